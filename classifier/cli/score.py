"""``threadguard score``: stance and toxicity for every comment, streamed to a file or the terminal."""

from __future__ import annotations

import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from classifier.cli._app import (
    BackendChoice,
    BackendOption,
    ColumnOption,
    ErrorsOption,
    InputFormatOption,
    MaxCharsOption,
    app,
    read_options,
)


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
    backend: BackendOption = BackendChoice.auto,
    moderate: Annotated[
        bool, typer.Option("--moderate", help="Add the moderation decision and its reasons.")
    ] = False,
    policy: Annotated[
        Path | None,
        typer.Option(
            help="Moderation policy YAML (default: the built-in policy); implies --moderate."
        ),
    ] = None,
    input_format: InputFormatOption = None,
    column: ColumnOption = None,
    errors: ErrorsOption = None,
    max_comment_chars: MaxCharsOption = 50_000,
) -> None:
    """Label every comment with its stance toward its target and its toxicity.

    One row per comment; bad records become error rows. Exit code 1 when some
    records were errors.
    """
    from classifier.runtime import BackendUnavailableError, exports_pending
    from classifier.scoring import ScoreRun

    if fmt is None:
        fmt = ScoreFormat.table if output is None and sys.stdout.isatty() else ScoreFormat.jsonl
    if fmt is ScoreFormat.table and output is not None:
        raise typer.BadParameter("the table format is for the terminal; pick jsonl, csv or parquet")
    options = read_options(input_format, column, max_comment_chars)
    try:
        pending = exports_pending(model, backend.value) if device.value == "cpu" else []
        if pending:
            typer.echo(
                f"preparing the model for ONNX Runtime ({len(pending)} export(s), first run "
                "only; later runs read the cache)...",
                err=True,
            )
        started = time.perf_counter()
        run = ScoreRun.create(
            model,
            batch_size=batch_size,
            device=device.value,
            backend=backend.value,
            moderate=moderate,
            policy=policy,
        )
        loaded = time.perf_counter() - started
        summary = run.run(paths, output, fmt.value, options, errors, progress=sys.stderr.isatty())
        summary.load_seconds = loaded
    except (ValueError, FileNotFoundError, BackendUnavailableError) as exc:
        raise typer.BadParameter(str(exc)) from None
    for line in summary.lines():
        typer.echo(line, err=True)
    if summary.errors:
        raise typer.Exit(code=1)
