"""``threadguard parse``: read threads from any supported input and write them out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from classifier.cli._app import (
    MAX_LINE_BYTES,
    ColumnOption,
    DelimiterOption,
    ErrorsOption,
    InputFormatOption,
    MaxCharsOption,
    MaxLineBytesOption,
    OutFormat,
    app,
    read_options,
)


@app.command()
def parse(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="PATH...",
            help="Files or folders: article pages (.txt, .html), JSONL, CSV, TSV, Parquet; - for JSONL on stdin.",
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of standard output.")
    ] = None,
    fmt: Annotated[
        OutFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutFormat.jsonl,
    input_format: InputFormatOption = None,
    column: ColumnOption = None,
    errors: ErrorsOption = None,
    max_comment_chars: MaxCharsOption = 50_000,
    delimiter: DelimiterOption = None,
    max_line_bytes: MaxLineBytesOption = MAX_LINE_BYTES,
) -> None:
    """Read comment threads and write them out, with a summary on stderr.

    Exit code 0 when every record was read, 1 when some records were errors. Exit code 2
    when an output was refused (it is an input, or inside an input folder, or another run
    is writing it) or could not be written; the outputs are then left as they were.
    """
    from classifier.io.ingest import parse_threads
    from classifier.io.outputs import OutputError

    options = read_options(input_format, column, max_comment_chars, delimiter, max_line_bytes)
    try:
        summary = parse_threads(paths, output, fmt.value, options, errors)
    except OutputError as exc:  # refused, or could not be written: nothing was replaced
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    for line in summary.lines():
        typer.echo(line, err=True)
    if summary.errors:
        raise typer.Exit(code=1)
