"""The Typer app every command registers on, and the options shared between commands."""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from classifier.io.options import ReadOptions

from classifier import DEFAULT_MODEL_VERSION, __version__


class _Group(TyperGroup):
    """The command group: ``--help`` lists the everyday commands first (:data:`FIRST`), then
    the rest as registered (Typer lists them in import order, evaluate first)."""

    FIRST = ("score", "parse", "serve")

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        return [n for n in self.FIRST if n in names] + [n for n in names if n not in self.FIRST]


# Typer 0.27 and later print a required argument in braces ({path}...) and, from 0.29, every
# parameter's Python type (<bool>, <list[Path]>): pyproject.toml keeps typer below 0.27,
# whose help reads as a shell user expects (tests/test_cli.py checks every command's).
app = typer.Typer(
    name="threadguard",
    help="Stance and toxicity for every comment in a thread, and moderation decisions from them.",
    no_args_is_help=True,
    add_completion=False,
    cls=_Group,
    # markdown: a docstring paragraph's line breaks are not kept as breaks mid-sentence
    rich_markup_mode="markdown",
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


def needs_train_extra(what: str, exc: ImportError) -> typer.BadParameter:
    """The usage error of a command whose training imports are missing (``exc``): ``what``
    ("training", "calibrating", ...) needs the train extra, and how to install it."""
    return typer.BadParameter(
        f"{what} needs the train extra ({exc.name} is missing): pip install 'threadguard[train]'"
    )


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
        "--column",
        "-c",
        metavar="FIELD=COLUMN",
        help="FIELD=COLUMN for flat inputs, e.g. text=CONTENT (repeatable).",
    ),
]
ErrorsOption = Annotated[
    Path | None, typer.Option("--errors", help="Write error rows here as JSONL (default: stderr).")
]
MaxCharsOption = Annotated[
    int, typer.Option(help="Longest comment accepted, in characters; longer ones are errors.")
]

DelimiterOption = Annotated[
    str | None,
    typer.Option(
        "--delimiter",
        help="The field separator of CSV inputs, e.g. ';' or '\\t' (default: detected from "
        "the file's first lines: comma, semicolon, tab or pipe).",
    ),
]
#: The longest line (JSONL) or CSV record read, in bytes (the default of --max-line-bytes;
#: classifier.io.options.MAX_LINE_BYTES, not imported here: the CLI starts fast).
MAX_LINE_BYTES = 32 * 2**20
MaxLineBytesOption = Annotated[
    int,
    typer.Option(
        help="Longest JSONL line or CSV record read, in bytes; a longer one is an error row.",
        min=1024,
    ),
]


def read_options(
    input_format: InFormat | None,
    column: list[str] | None,
    max_comment_chars: int,
    delimiter: str | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
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
            delimiter=_unescape(delimiter),
            max_line_bytes=max_line_bytes,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _unescape(delimiter: str | None) -> str | None:
    """``\\t`` as typed in a shell for a tab (``$'\\t'`` gives the tab itself)."""
    if delimiter is None:
        return None
    return {"\\t": "\t", "tab": "\t"}.get(delimiter, delimiter)


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
