"""What every reader shares: input formats, column names, read options, and finding the files.

:class:`ReadOptions` says how to read (a format that overrides detection, the
column names of the flat form, the longest comment accepted);
:func:`detect_format` tells a file's format from its extension or first bytes;
:func:`expand_paths` turns the files and folders named on the command line
into the files to read. :class:`RecordError` is how a reader says that one
record, not the file, is bad.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from classifier.schema import ErrorRecord, Thread

logger = logging.getLogger(__name__)

InputFormat = Literal["page", "html", "jsonl", "csv", "tsv", "parquet"]
INPUT_FORMATS: tuple[str, ...] = ("page", "html", "jsonl", "csv", "tsv", "parquet")
EXTENSIONS: dict[str, InputFormat] = {
    ".txt": "page",
    ".text": "page",
    ".html": "html",
    ".htm": "html",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
#: Default longest comment accepted, in characters; longer ones are an error, not a truncation.
MAX_COMMENT_CHARS = 50_000
#: Default longest JSONL line or CSV record read, in bytes: a longer one is an error row, read
#: past in bounded memory (a file with no line end at all, such as /dev/zero, is not held).
MAX_LINE_BYTES = 32 * 2**20
ParsedItem = Thread | ErrorRecord


@dataclass
class Columns:
    """Which column (or JSON key) holds each field of the flat form.

    Each field lists the names it is found under, tried in order; the common
    variants are there by default. :meth:`with_overrides` puts a user's own
    names first. Columns that are none of these are kept in ``Comment.extra``.
    """

    thread_id: tuple[str, ...] = ("thread_id", "article_id", "post_id", "story_id", "link_id")
    comment_id: tuple[str, ...] = ("comment_id", "id", "comment_key")
    parent_id: tuple[str, ...] = ("parent_id", "parent", "in_reply_to", "reply_to", "parentID")
    text: tuple[str, ...] = ("text", "comment_text", "body", "comment", "content", "message")
    author: tuple[str, ...] = ("author", "user", "username", "user_name", "name")
    timestamp: tuple[str, ...] = ("timestamp", "created_at", "created_utc", "date", "time")
    source: tuple[str, ...] = ("source",)
    article_url: tuple[str, ...] = ("article_url", "url", "story_url")
    article_title: tuple[str, ...] = ("article_title", "title", "headline")
    article_body: tuple[str, ...] = ("article_body", "article_text")
    article_published: tuple[str, ...] = ("article_published",)
    article_author: tuple[str, ...] = ("article_author",)
    extra: tuple[str, ...] = ("extra",)
    thread_extra: tuple[str, ...] = ("thread_extra",)

    def with_overrides(self, overrides: Mapping[str, str]) -> Columns:
        """A copy where ``overrides`` (field name → column name) is tried first."""
        names = {f.name for f in fields(self)}
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for key, column in overrides.items():
            if key not in names:
                raise ValueError(f"unknown column field {key!r}; known: {sorted(names)}")
            values[key] = (column, *values[key])
        return Columns(**values)

    def resolve(self, available: Iterable[str]) -> dict[str, str]:
        """Field name → the column that holds it, for the columns a file has."""
        have = list(available)
        lookup = {c.lower(): c for c in have}
        found: dict[str, str] = {}
        for f in fields(self):
            for name in getattr(self, f.name):
                if name in have:
                    found[f.name] = name
                    break
                if name.lower() in lookup:
                    found[f.name] = lookup[name.lower()]
                    break
        # a column claimed by an earlier field is not reused by a later one (e.g. "title")
        seen: set[str] = set()
        for key in list(found):
            if found[key] in seen:
                del found[key]
            else:
                seen.add(found[key])
        return found


@dataclass
class ReadOptions:
    """How to read: format override, column names, CSV delimiter, limits.

    ``delimiter`` is the CSV field separator; ``None`` detects it from the file's first
    lines (a semicolon- or tab-separated export named ``.csv`` is common).
    ``max_line_bytes`` bounds one JSONL line or CSV record (:data:`MAX_LINE_BYTES`).
    """

    input_format: InputFormat | None = None
    columns: Columns = field(default_factory=Columns)
    max_comment_chars: int = MAX_COMMENT_CHARS
    delimiter: str | None = None
    max_line_bytes: int = MAX_LINE_BYTES

    def __post_init__(self) -> None:
        if self.input_format is not None and self.input_format not in INPUT_FORMATS:
            raise ValueError(
                f"unknown input format {self.input_format!r}; choose from {INPUT_FORMATS}"
            )
        if self.max_comment_chars <= 0:
            raise ValueError(f"max_comment_chars must be positive, got {self.max_comment_chars}")
        if self.delimiter is not None and (len(self.delimiter) != 1 or self.delimiter in '"\r\n'):
            raise ValueError(
                f"the delimiter must be one character other than a quote or a line end, "
                f"got {self.delimiter!r}"
            )
        if self.max_line_bytes < 1024:
            raise ValueError(f"max_line_bytes must be at least 1024, got {self.max_line_bytes}")


class RecordError(ValueError):
    """A record that cannot become a comment; carries the record's id when known."""

    def __init__(self, message: str, record_id: str | None = None) -> None:
        super().__init__(message)
        self.record_id = record_id


def detect_format(path: Path) -> InputFormat:
    """The input format of ``path``, from its extension or, failing that, its first bytes."""
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is not None:
        return fmt
    with path.open("rb") as fh:
        head = fh.read(4096)
    stripped = head.lstrip()
    if head.startswith(b"PAR1"):
        return "parquet"
    if stripped.startswith(b"{"):
        return "jsonl"
    if stripped[:15].lower().startswith((b"<!doctype html", b"<html")):
        return "html"
    first = head.split(b"\n", 1)[0]
    if first.count(b"\t") >= 2:
        return "tsv"
    if first.count(b",") >= 2 and len(first) < 1000:
        return "csv"
    return "page"


SUPPORTED_SUFFIXES = frozenset(EXTENSIONS)


def expand_paths(
    paths: Iterable[str | Path], unreadable: list[tuple[Path, str]] | None = None
) -> tuple[list[Path], list[Path]]:
    """Files to read (folders expanded, sorted) and the files in folders that were skipped.

    A file named directly is always read (its format is sniffed if its
    extension is unknown); inside a folder only files with a supported
    extension are read, so a README beside the data is not taken for a page.
    A folder that cannot be listed (no permission) is added to ``unreadable`` with
    the reason, for the caller to report as an error row; without that list it is
    logged. A path that cannot even be examined is returned as a file, whose
    reader then reports why it cannot be read.
    """
    files: list[Path] = []
    skipped: list[Path] = []
    problems: list[tuple[Path, str]] = [] if unreadable is None else unreadable
    for raw in paths:
        path = Path(raw)
        if not _is_dir(path):
            files.append(path)
            continue
        found: list[Path] = []

        def failed(exc: OSError, top: Path = path) -> None:
            where = Path(exc.filename) if exc.filename else top
            problems.append((where, exc.strerror or str(exc)))

        for folder, dirs, names in os.walk(path, onerror=failed):
            dirs.sort()
            found.extend(Path(folder, n) for n in names if not n.startswith("."))
        for child in sorted(found):
            if not _is_file(child):
                continue
            (files if child.suffix.lower() in SUPPORTED_SUFFIXES else skipped).append(child)
    if unreadable is None:
        for where, why in problems:
            logger.warning("cannot read folder %s: %s", where, why)
    return files, skipped


def _is_dir(path: Path) -> bool:
    """``path.is_dir()``, False where it cannot be examined (e.g. in a folder that
    cannot be entered, where ``is_dir`` raises instead)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return True  # its reader says why it cannot be read
