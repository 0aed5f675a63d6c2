"""The Typer app every command registers on, and the options shared between commands."""

from __future__ import annotations

import logging
from enum import Enum
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
