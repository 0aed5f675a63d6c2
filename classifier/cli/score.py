"""``threadguard score``: stance and toxicity for every comment, streamed to a file or the terminal."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from classifier.cli._app import InFormat, app
from classifier.cli.parse import _column_overrides


class ScoreFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"
    table = "table"


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


@app.command()
def score(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="What `threadguard parse` reads: pages, JSONL, CSV, Parquet; - for stdin."
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="A saved model folder (default: the shipped model)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of standard output.")
    ] = None,
    fmt: Annotated[
        ScoreFormat | None,
        typer.Option(
            "--format", "-f", help="Output format (default: table on a terminal, JSONL otherwise)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Comments per forward pass.", min=1)] = 32,
    device: Annotated[Device, typer.Option(help="Where the model runs.")] = Device.cpu,
    moderate: Annotated[
        bool, typer.Option("--moderate", help="Add the moderation decision and its reasons.")
    ] = False,
    policy: Annotated[
        Path | None,
        typer.Option(
            help="Moderation policy YAML (default: the built-in policy); implies --moderate."
        ),
    ] = None,
    input_format: Annotated[
        InFormat | None,
        typer.Option(
            "--input-format", help="Read every input as this format instead of detecting it."
        ),
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option("--column", "-c", help="FIELD=COLUMN for flat inputs (repeatable)."),
    ] = None,
    errors: Annotated[
        Path | None,
        typer.Option("--errors", help="Write error rows here as JSONL (default: stderr)."),
    ] = None,
    max_comment_chars: Annotated[
        int, typer.Option(help="Longest comment accepted, in characters; longer ones are errors.")
    ] = 50_000,
) -> None:
    """Label every comment with its stance toward its target and its toxicity.

    One row per comment; bad records become error rows. Exit code 1 when some
    records were errors.
    """
    from classifier.readers import Columns, ReadOptions
    from classifier.scoring import ScoreRun

    if fmt is None:
        fmt = ScoreFormat.table if output is None and sys.stdout.isatty() else ScoreFormat.jsonl
    if fmt is ScoreFormat.table and output is not None:
        raise typer.BadParameter("the table format is for the terminal; pick jsonl, csv or parquet")
    try:
        options = ReadOptions(
            input_format=input_format.value if input_format else None,
            columns=Columns().with_overrides(_column_overrides(column or [])),
            max_comment_chars=max_comment_chars,
        )
        run = ScoreRun.create(
            model, batch_size=batch_size, device=device.value, moderate=moderate, policy=policy
        )
        summary = run.run(paths, output, fmt.value, options, errors, progress=sys.stderr.isatty())
    except (ValueError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc)) from None
    for line in summary.lines():
        typer.echo(line, err=True)
    if summary.errors:
        raise typer.Exit(code=1)
