"""``threadguard parse``: read threads from any supported input and write them out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from classifier.cli._app import InFormat, OutFormat, app


def _column_overrides(values: list[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for value in values:
        key, sep, column = value.partition("=")
        if not sep or not key or not column:
            raise typer.BadParameter(f"expected FIELD=COLUMN, got {value!r}", param_hint="--column")
        overrides[key.strip()] = column.strip()
    return overrides


@app.command()
def parse(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Files or folders: article pages (.txt, .html), JSONL, CSV, TSV, Parquet; - for JSONL on stdin."
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of standard output.")
    ] = None,
    fmt: Annotated[
        OutFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutFormat.jsonl,
    input_format: Annotated[
        InFormat | None,
        typer.Option(
            "--input-format", help="Read every input as this format instead of detecting it."
        ),
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column", "-c", help="FIELD=COLUMN for flat inputs, e.g. text=CONTENT (repeatable)."
        ),
    ] = None,
    errors: Annotated[
        Path | None,
        typer.Option("--errors", help="Write error rows here as JSONL (default: stderr)."),
    ] = None,
    max_comment_chars: Annotated[
        int, typer.Option(help="Longest comment accepted, in characters; longer ones are errors.")
    ] = 50_000,
) -> None:
    """Read comment threads and write them out, with a summary on stderr.

    Exit code 0 when every record was read, 1 when some records were errors.
    """
    from classifier.ingest import parse_threads
    from classifier.readers import Columns, ReadOptions

    try:
        options = ReadOptions(
            input_format=input_format.value if input_format else None,
            columns=Columns().with_overrides(_column_overrides(column or [])),
            max_comment_chars=max_comment_chars,
        )
        summary = parse_threads(paths, output, fmt.value, options, errors)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    for line in summary.lines():
        typer.echo(line, err=True)
    if summary.errors:
        raise typer.Exit(code=1)
