"""The ``threadguard`` command line: thin Typer commands over the library."""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from classifier import __version__

app = typer.Typer(
    name="threadguard",
    help="Stance and toxicity for every comment in a thread, and moderation decisions from them.",
    no_args_is_help=True,
    add_completion=False,
)


class InFormat(str, Enum):
    page = "page"
    html = "html"
    jsonl = "jsonl"
    csv = "csv"
    tsv = "tsv"
    parquet = "parquet"


class OutFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"threadguard {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


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


@app.command()
def train(
    config: Annotated[
        Path, typer.Argument(help="Training recipe (YAML), e.g. configs/default.yaml.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Model folder (default: the recipe's output_dir)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a recipe value: KEY=VALUE, dotted keys for sections (repeatable).",
        ),
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option("--fresh", help="Ignore a checkpoint left in the output folder; start over."),
    ] = False,
) -> None:
    """Fine-tune a model from a recipe (needs the `train` extra). Resumes an interrupted run."""
    try:
        from training.config import load_config
        from training.trainer import train as run_training
    except ImportError as exc:
        raise typer.BadParameter(
            f"training needs the train extra ({exc.name} is missing): pip install 'threadguard[train]'"
        ) from None
    try:
        recipe = load_config(config, set_ or [])
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="CONFIG") from None
    result = run_training(recipe, output, resume=not fresh)
    typer.echo(
        f"trained {result.steps} steps; best {recipe.early_stopping_metric} = {result.best_metric} "
        f"at step {result.best_step}; model in {result.output_dir}",
        err=True,
    )


if __name__ == "__main__":
    app()
