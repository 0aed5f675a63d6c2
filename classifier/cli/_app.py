"""The Typer app every command registers on, and the options shared between commands."""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from classifier.io.options import ReadOptions

from classifier import DEFAULT_MODEL_VERSION, __version__

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
        typer.echo(f"threadguard {__version__} (shipped model {DEFAULT_MODEL_VERSION})")
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


# Options every command that reads threads takes (parse, score), declared once.
InputFormatOption = Annotated[
    InFormat | None,
    typer.Option("--input-format", help="Read every input as this format instead of detecting it."),
]
ColumnOption = Annotated[
    list[str] | None,
    typer.Option(
        "--column", "-c", help="FIELD=COLUMN for flat inputs, e.g. text=CONTENT (repeatable)."
    ),
]
ErrorsOption = Annotated[
    Path | None, typer.Option("--errors", help="Write error rows here as JSONL (default: stderr).")
]
MaxCharsOption = Annotated[
    int, typer.Option(help="Longest comment accepted, in characters; longer ones are errors.")
]


def read_options(
    input_format: InFormat | None, column: list[str] | None, max_comment_chars: int
) -> ReadOptions:
    """The reader settings these options ask for (``typer.BadParameter`` when malformed)."""
    from classifier.io.options import Columns, ReadOptions

    overrides: dict[str, str] = {}
    for value in column or []:
        key, sep, name = value.partition("=")
        if not sep or not key or not name:
            raise typer.BadParameter(f"expected FIELD=COLUMN, got {value!r}", param_hint="--column")
        overrides[key.strip()] = name.strip()
    try:
        return ReadOptions(
            input_format=input_format.value if input_format else None,
            columns=Columns().with_overrides(overrides),
            max_comment_chars=max_comment_chars,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


class BackendChoice(str, Enum):
    """``classifier.model.constants.BACKENDS`` names, and ``auto``; kept in step by tests/test_backends.py."""

    auto = "auto"
    torch = "torch"
    int8 = "int8"
    onnx = "onnx"
    onnx_int8 = "onnx-int8"


# What runs the model for the commands that score (score, serve), declared once.
BackendOption = Annotated[
    BackendChoice,
    typer.Option(
        "--backend",
        help="How the model runs: auto (the fastest backend measured to stay within 0.5 "
        "points of the reference's test metrics: onnx on a CPU, torch on a GPU), torch "
        "(float32 reference), onnx (the same float32 model on ONNX Runtime, no torch import "
        "once exported), int8 or onnx-int8 (about 2x faster on a CPU, scores move: see "
        "docs/speed.md).",
    ),
]
