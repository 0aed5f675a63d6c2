"""``threadguard score``: stance and toxicity for every comment, streamed to a file or the terminal."""

from __future__ import annotations

import sys
import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from classifier.cli._app import (
    MAX_LINE_BYTES,
    BackendChoice,
    BackendOption,
    ColumnOption,
    DelimiterOption,
    ErrorsOption,
    InputFormatOption,
    MaxCharsOption,
    MaxLineBytesOption,
    app,
    read_options,
)

if TYPE_CHECKING:
    from classifier.io.options import ReadOptions


class ScoreFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"
    table = "table"


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


class Engine(str, Enum):
    local = "local"
    ray = "ray"


class Sort(str, Enum):
    input = "input"
    constructive = "constructive"


@app.command()
def score(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="PATH...",
            help="What `threadguard parse` reads: pages, JSONL, CSV, Parquet; - for stdin.",
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
    engine: Annotated[
        Engine,
        typer.Option(
            help="local: this process; ray: a Ray Data actor pool (needs the ray extra of "
            "threadguard), the same rows written to the --output folder as part files."
        ),
    ] = Engine.local,
    ray_address: Annotated[
        str | None,
        typer.Option(help="With --engine ray: join this Ray cluster (default: start a local Ray)."),
    ] = None,
    workers: Annotated[
        int, typer.Option(help="With --engine ray: actors, each loading the model once.", min=1)
    ] = 2,
    part_comments: Annotated[
        int,
        typer.Option(
            help="With --engine ray: comments per part file (held by this process while the "
            "workers score it; a part starts fresh actors).",
            min=1,
        ),
    ] = 200_000,
    spans: Annotated[
        bool,
        typer.Option(
            "--spans/--no-spans",
            help="Give each row the words that drove its toxicity (character offsets); "
            "--no-spans leaves them out, a little faster.",
        ),
    ] = True,
    sort: Annotated[
        Sort,
        typer.Option(
            help="Each thread's rows as read (input), or most constructive first "
            "(constructive; the local engine)."
        ),
    ] = Sort.input,
    delimiter: DelimiterOption = None,
    max_line_bytes: MaxLineBytesOption = MAX_LINE_BYTES,
) -> None:
    """Label every comment with its stance toward its target, its toxicity (and the words
    that drove it) and its constructiveness.

    One row per comment; bad records become error rows. Exit code 1 when some
    records were errors. Exit code 2 when an output was refused (it is an input, or inside
    an input folder, or another run is writing it) or could not be written.
    """
    from classifier.io.outputs import OutputError, check_outputs
    from classifier.model.constants import BackendUnavailableError
    from classifier.model.loading import exports_pending
    from classifier.scoring import ScoreRun

    if engine is Engine.ray:
        if sort is not Sort.input:
            raise typer.BadParameter("--sort constructive works with the local engine")
        _score_on_ray(
            paths, model, output, fmt, batch_size, device, backend.value, moderate, policy,
            read_options(input_format, column, max_comment_chars, delimiter, max_line_bytes), errors, ray_address, workers,
            part_comments, spans,
        )  # fmt: skip
        return
    if fmt is None:
        fmt = ScoreFormat.table if output is None and sys.stdout.isatty() else ScoreFormat.jsonl
    if fmt is ScoreFormat.table and output is not None:
        raise typer.BadParameter("the table format is for the terminal; pick jsonl, csv or parquet")
    options = read_options(input_format, column, max_comment_chars, delimiter, max_line_bytes)
    try:
        check_outputs(paths, [output, errors])  # before the model loads: refused at once
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
            spans=spans,
        )
        loaded = time.perf_counter() - started
        summary = run.run(
            paths, output, fmt.value, options, errors, progress=sys.stderr.isatty(),
            sort=sort.value,
        )  # fmt: skip
        summary.load_seconds = loaded
    except OutputError as exc:  # refused, or could not be written: nothing was replaced
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    except (ValueError, FileNotFoundError, BackendUnavailableError) as exc:
        raise typer.BadParameter(str(exc)) from None
    for line in summary.lines():
        typer.echo(line, err=True)
    if summary.errors:
        raise typer.Exit(code=1)


def _score_on_ray(
    paths: list[str],
    model: str | None,
    output: Path | None,
    fmt: ScoreFormat | None,
    batch_size: int,
    device: Device,
    backend: str,
    moderate: bool,
    policy: Path | None,
    options: ReadOptions,
    errors: Path | None,
    address: str | None,
    workers: int,
    part_comments: int,
    spans: bool = True,
) -> None:
    """``--engine ray``: :func:`classifier.ray_engine.score_with_ray`."""
    from classifier.model.constants import BackendUnavailableError
    from classifier.ray_engine import main_summary_lines, score_with_ray

    if output is None:
        raise typer.BadParameter("--engine ray writes a folder of part files: give --output DIR")
    if fmt is ScoreFormat.table:
        raise typer.BadParameter("--engine ray writes jsonl, csv or parquet part files")
    if device is not Device.cpu:
        raise typer.BadParameter("--engine ray runs its workers on the CPU")
    try:
        summary = score_with_ray(
            paths,
            output,
            (fmt or ScoreFormat.jsonl).value,
            options,
            errors,
            model=model,
            workers=workers,
            address=address,
            backend=backend,
            batch_size=batch_size,
            moderate=moderate,
            policy=policy,
            part_comments=part_comments,
            progress=sys.stderr.isatty(),
            spans=spans,
        )
    except (ValueError, FileNotFoundError, BackendUnavailableError) as exc:
        raise typer.BadParameter(str(exc)) from None
    for line in main_summary_lines(summary, output):
        typer.echo(line, err=True)
    if summary.errors:
        raise typer.Exit(code=1)
