"""The Typer app every command registers on, and the options shared between commands."""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

if TYPE_CHECKING:
    from classifier.io.options import ReadOptions

from classifier import DEFAULT_MODEL_VERSION, __version__


class _Argument(TyperArgument):
    """A positional argument as a shell user reads it: ``PATH...`` in the usage line (not
    Typer's ``{PATH}...``), named in capitals, and no Python type (``<list[str]>``)."""

    @property
    def display_name_raw(self) -> str:
        return self.metavar or (self.name or "").upper()

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return f"{name}..." if self.nargs != 1 else name

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


class _Option(TyperOption):
    """An option whose help shows the value it takes: none for a switch (not ``<bool>``), one
    value's type for a repeatable option (not ``<list[str]>``)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag:
            return None
        label = super().display_type_rich(ctx)
        if self.multiple and label and label.startswith("<list[") and label.endswith("]>"):
            return f"<{label[len('<list[') : -len(']>')]}>"
        return label


def _for_shell_users(params: list[Any]) -> None:
    # Typer builds its own parameter classes; these subclasses change their help display only.
    for param in params:
        if type(param) is TyperArgument:
            param.__class__ = _Argument
        elif type(param) is TyperOption:
            param.__class__ = _Option


class _Command(TyperCommand):
    """A command whose help shows its parameters as above, ``--help`` included."""

    def get_help_option(self, ctx: Any) -> TyperOption | None:
        option = super().get_help_option(ctx)
        _for_shell_users([option])
        return option


class _Group(TyperGroup):
    """The command group: its commands and options get the help display above; ``--help``
    lists the everyday commands first (:data:`FIRST`), then the rest as registered."""

    FIRST = ("score", "parse", "serve")

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        return [n for n in self.FIRST if n in names] + [n for n in names if n not in self.FIRST]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _for_shell_users(self.params)
        for command in self.commands.values():
            if type(command) is TyperCommand:
                command.__class__ = _Command
            _for_shell_users(command.params)

    def get_help_option(self, ctx: Any) -> TyperOption | None:
        option = super().get_help_option(ctx)
        _for_shell_users([option])
        return option


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
