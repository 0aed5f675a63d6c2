"""Read comment threads from files: pages, thread JSONL, flat JSONL, CSV and Parquet.

Every reader is a generator of :class:`~classifier.schema.Thread` and
:class:`~classifier.schema.ErrorRecord` items, reading its input in a stream
(line by line, CSV record by record, Parquet batch by batch) so a file of any
size is read in bounded memory; only one thread is held at a time.

Accounting is exact: every input record (a comment; an article-only row in
the flat form) becomes part of a yielded thread or one error record. No
record can end the reading of a file: each is validated at the boundary
(:mod:`classifier.schema`: strict types, valid Unicode, bounded ``extra``),
and a record that fails in any way becomes that record's error row while the
reader goes on with the next. A line that is not JSON at all (malformed,
nested too deeply, not UTF-8) is one record. A thread line whose own fields
are bad gives one error row for each of its comments. A CSV record with an
unterminated quote is one error row naming its first line; reading goes on
from the line after it.

The *flat* form has one comment a row with a thread id; the article is
carried by ``article_*`` columns repeated on each row. Rows of one thread
must be contiguous (as :mod:`classifier.writers` writes them): holding
every thread until the end of the file would not stream. A thread id that
comes back after another thread is read as a second part of it, with a
warning.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from classifier.schema import (
    ID_CELL,
    STAMP_CELL,
    TEXT_CELL,
    Article,
    Comment,
    CommentRecord,
    ErrorRecord,
    Thread,
    check_json_object,
    describe,
    stable_id,
    text_problem,
)

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
    """How to read: format override, column names, limits."""

    input_format: InputFormat | None = None
    columns: Columns = field(default_factory=Columns)
    max_comment_chars: int = MAX_COMMENT_CHARS

    def __post_init__(self) -> None:
        if self.input_format is not None and self.input_format not in INPUT_FORMATS:
            raise ValueError(
                f"unknown input format {self.input_format!r}; choose from {INPUT_FORMATS}"
            )
        if self.max_comment_chars <= 0:
            raise ValueError(f"max_comment_chars must be positive, got {self.max_comment_chars}")


class RecordError(ValueError):
    """A record that cannot become a comment; carries the record's id when known."""

    def __init__(self, message: str, record_id: str | None = None) -> None:
        super().__init__(message)
        self.record_id = record_id


# --- detection ----------------------------------------------------------------------


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


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """Files to read (folders expanded, sorted) and the files in folders that were skipped.

    A file named directly is always read (its format is sniffed if its
    extension is unknown); inside a folder only files with a supported
    extension are read, so a README beside the data is not taken for a page.
    """
    files: list[Path] = []
    skipped: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.name.startswith("."):
                    continue
                (files if child.suffix.lower() in SUPPORTED_SUFFIXES else skipped).append(child)
        else:
            files.append(path)
    return files, skipped


# --- validation shared by every reader ----------------------------------------------

_SURROGATE = re.compile("[\udc80-\udcff]")
#: Flat-form fields that are ids (strings or integers) and timestamps (strings, numbers, dates).
_ID_FIELDS = frozenset({"thread_id", "comment_id", "parent_id"})
_STAMP_FIELDS = frozenset({"timestamp", "article_published"})
_JSON_FIELDS = frozenset({"extra", "thread_extra"})


def _undecodable(value: str) -> int | None:
    """Position of the first byte that was not UTF-8 (decoded as a lone surrogate), if any."""
    m = _SURROGATE.search(value)
    return m.start() if m else None


def _record_id(value: Any) -> str | None:
    """An id to name a bad record by in its error row: a string or an integer, else none."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def check_comment(comment: Comment, max_chars: int) -> None:
    """Raise :class:`RecordError` if ``comment`` cannot be scored."""
    for name in ("id", "text", "parent_id", "author", "timestamp"):
        value = getattr(comment, name)
        if isinstance(value, str) and (problem := text_problem(value)) is not None:
            raise RecordError(f"field {name!r} {problem}", comment.id)
    if not comment.text or not comment.text.strip():
        raise RecordError("comment text is empty", comment.id)
    if len(comment.text) > max_chars:
        raise RecordError(
            f"comment text is {len(comment.text):,} characters, over the limit of "
            f"{max_chars:,} (--max-comment-chars)",
            comment.id,
        )


def finish_thread(
    thread: Thread, candidates: list[tuple[str, Comment]], max_chars: int
) -> Iterator[ParsedItem]:
    """Check a thread's comments as a whole and yield its errors, then the thread.

    ``candidates`` are (location, comment) pairs in source order. A comment is
    an error if it is unreadable, repeats an id, replies to itself or to an
    id the thread does not have, or sits in a reply cycle.

    A reply to a comment that was itself an error is kept: its parent exists
    in the input, only its text could not be used (the reply is then read
    against the article).
    """
    good: list[tuple[str, Comment]] = []
    ids: set[str] = set()  # every id the input has, usable or not
    kept: set[str] = set()
    for location, comment in candidates:
        try:
            if comment.id in kept:
                raise RecordError(f"duplicate comment id {comment.id!r} in thread", comment.id)
            ids.add(comment.id)
            check_comment(comment, max_chars)
        except RecordError as exc:
            yield ErrorRecord(thread.source, location, str(exc), exc.record_id, thread.id)
            continue
        kept.add(comment.id)
        good.append((location, comment))
    parents = {c.id: c.parent_id for _, c in good}
    for location, comment in good:
        error = None
        if comment.parent_id == comment.id:
            error = "comment replies to itself"
        elif comment.parent_id is not None and comment.parent_id not in ids:
            error = f"parent id {comment.parent_id!r} points to no comment of thread {thread.id!r}"
        else:
            seen = {comment.id}
            parent = comment.parent_id
            while parent is not None and parent in parents:
                if parent in seen:
                    error = "comment is part of a reply cycle"
                    break
                seen.add(parent)
                parent = parents[parent]
        if error:
            yield ErrorRecord(thread.source, location, error, comment.id, thread.id)
        else:
            thread.comments.append(comment)
    yield thread


# --- pages ------------------------------------------------------------------------------


def read_page(path: Path, fmt: InputFormat, options: ReadOptions) -> Iterator[ParsedItem]:
    """A page file (text or HTML) is one thread."""
    from classifier.pages import parse_page_html, parse_page_text

    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="surrogateescape")
    if (pos := _undecodable(text)) is not None:
        logger.warning("%s: bytes that are not UTF-8 near character %d were replaced", path, pos)
        text = raw.decode("utf-8", errors="replace")
    thread = parse_page_html(text, str(path)) if fmt == "html" else parse_page_text(text, str(path))
    candidates = [(f"comment {i}", c) for i, c in enumerate(thread.comments, 1)]
    thread.comments = []
    yield from finish_thread(thread, candidates, options.max_comment_chars)


# --- flat rows and thread lines -----------------------------------------------------------


class _FlatAssembler:
    """Groups contiguous flat rows into threads and checks them."""

    def __init__(self, source: str, columns: Columns, max_chars: int) -> None:
        self.source = source
        self.columns = columns
        self.max_chars = max_chars
        self.current: Thread | None = None
        self.rows: list[tuple[str, Comment]] = []
        self.article_rows = 0
        self.closed: set[str] = set()  # thread ids already written, to spot unsorted input
        self._resolved: tuple[frozenset[str], dict[str, str]] | None = None

    def _colmap(self, keys: Iterable[str]) -> dict[str, str]:
        key_set = frozenset(keys)
        if self._resolved is None or self._resolved[0] != key_set:
            self._resolved = (key_set, self.columns.resolve(key_set))
        return self._resolved[1]

    def _cells(self, row: Mapping[str, Any], cols: dict[str, str]) -> dict[str, str | None]:
        """Every claimed cell of ``row``, validated (:class:`RecordError` on the first bad one).

        Text cells must be strings (a number, list or object is an error, not turned
        into text); ids may be integers; timestamps may be numbers or dates. CSV has
        no null: an empty cell, a missing one and a null (or a Parquet NaN) are the same.
        """
        values: dict[str, str | None] = {}
        # the comment id first, so a later bad cell's error row can name the record
        order = sorted(cols, key=lambda name: name != "comment_id")
        for name in order:
            if name in _JSON_FIELDS:
                continue
            value = row.get(cols[name])
            if isinstance(value, float) and value != value:
                value = None
            adapter = (
                ID_CELL
                if name in _ID_FIELDS
                else STAMP_CELL
                if name in _STAMP_FIELDS
                else TEXT_CELL
            )
            try:
                values[name] = adapter.validate_python(value) or None
            except ValidationError as exc:
                rid = _record_id(value) if name == "comment_id" else values.get("comment_id")
                raise RecordError(f"column {cols[name]!r}: {describe(exc)}", rid) from None
        return values

    def _extra(
        self, row: Mapping[str, Any], cols: dict[str, str], record_id: str | None
    ) -> dict[str, Any]:
        """The comment's ``extra``: its ``extra`` column's object, then unclaimed columns."""
        used = set(cols.values())
        extra: dict[str, Any] = {}
        if "extra" in cols and (blob := row.get(cols["extra"])) not in (None, ""):
            extra.update(_load_json_object(blob, "extra", record_id))
        for key, value in row.items():
            if key in used or value is None or value == "":
                continue
            if isinstance(value, float) and value != value:
                continue
            extra[key] = _json_cell(value)
        try:
            return check_json_object(extra)
        except ValueError as exc:
            raise RecordError(f"extra columns: {exc}", record_id) from None

    def add(self, row: Mapping[str, Any], location: str, number: int) -> Iterator[ParsedItem]:
        """Take one flat row (raising :class:`RecordError` before any change if it is bad)."""
        cols = self._colmap(row.keys())
        cells = self._cells(row, cols)
        text = cells.get("text")
        comment_id = cells.get("comment_id")
        extra = self._extra(row, cols, comment_id)
        thread_extra: dict[str, Any] = {}
        if "thread_extra" in cols and (blob := row.get(cols["thread_extra"])) not in (None, ""):
            thread_extra = _load_json_object(blob, "thread_extra", comment_id)

        def get(name: str) -> str | None:
            return cells.get(name)

        thread_id = get("thread_id") or stable_id("file", Path(self.source).name)
        if self.current is None or self.current.id != thread_id:
            yield from self.flush()
            self.current = Thread(
                id=thread_id,
                source=get("source") or self.source,
                article=Article(
                    id=thread_id,
                    url=get("article_url"),
                    title=get("article_title") or "",
                    body=get("article_body") or "",
                    published=get("article_published"),
                    author=get("article_author"),
                ),
                extra=thread_extra,
            )
        if not text and not comment_id:
            # an article-only row: a thread that has no comments (see writers.py)
            self.article_rows += 1
            return
        parent = get("parent_id")
        self.rows.append(
            (
                location,
                Comment(
                    id=comment_id or str(number),
                    text=text or "",
                    parent_id=parent or None,
                    author=get("author"),
                    timestamp=get("timestamp"),
                    extra=extra,
                ),
            )
        )

    def flush(self) -> Iterator[ParsedItem]:
        if self.current is None:
            return
        thread, rows = self.current, self.rows
        self.current, self.rows = None, []
        if not rows and not self.article_rows:
            return
        self.article_rows = 0
        if thread.id in self.closed:
            logger.warning(
                "%s: rows of thread %s are not contiguous (sort the file by thread id); "
                "read as another part of it, whose replies can only point inside that part",
                self.source,
                thread.id,
            )
        self.closed.add(thread.id)
        yield from finish_thread(thread, rows, self.max_chars)


def _load_json_object(value: Any, name: str, record_id: str | None = None) -> dict[str, Any]:
    """A JSON-object cell (a dict, or JSON text of one), validated like every ``extra``."""
    if isinstance(value, dict):
        obj = value
    elif not isinstance(value, str):
        raise RecordError(
            f"column {name!r} is not a JSON object: got {type(value).__name__}", record_id
        )
    else:
        try:
            obj = json.loads(value)
        except RecursionError:
            raise RecordError(f"column {name!r} nests too deeply", record_id) from None
        except ValueError as exc:
            raise RecordError(f"column {name!r} is not a JSON object: {exc}", record_id) from None
    if not isinstance(obj, dict):
        raise RecordError(f"column {name!r} is not a JSON object", record_id)
    try:
        return check_json_object(obj)
    except ValueError as exc:
        raise RecordError(f"column {name!r} {exc}", record_id) from None


def _json_cell(value: Any) -> Any:
    """An unclaimed cell as a JSON value for ``extra`` (Parquet dates, decimals, bytes as text)."""
    if value is None or isinstance(value, (str, bool, int, float, list, dict)):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")  # checked with the rest
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _thread_from_line(
    obj: dict[str, Any], source: str, location: str, options: ReadOptions
) -> Iterator[ParsedItem]:
    """One thread JSONL line: the thread, with an error for each comment that is bad.

    If the thread's own fields are bad, each of its comments is an error row
    carrying that message (one error row for a thread without comments).
    """
    try:
        thread = Thread.from_dict(obj)
    except ValueError as exc:
        comments = obj.get("comments")
        thread_id = _record_id(obj.get("id"))
        if not isinstance(comments, list) or not comments:
            yield ErrorRecord(source, location, str(exc), None, thread_id)
            return
        for i, raw in enumerate(comments, 1):
            rid = _record_id(raw.get("id")) if isinstance(raw, dict) else None
            yield ErrorRecord(
                source, f"{location} comment {i}", f"bad thread: {exc}", rid, thread_id
            )
        return
    thread.source = thread.source or source
    candidates: list[tuple[str, Comment]] = []
    for i, raw in enumerate(obj["comments"], 1):
        where = f"{location} comment {i}"
        if not isinstance(raw, dict):
            yield ErrorRecord(thread.source, where, "comment is not a JSON object", None, thread.id)
            continue
        try:
            record = CommentRecord.model_validate(raw)
        except ValidationError as exc:
            yield ErrorRecord(
                thread.source,
                where,
                f"bad comment: {describe(exc)}",
                _record_id(raw.get("id")),
                thread.id,
            )
            continue
        comment = Comment(
            id=record.id or str(i),
            text=record.text or "",
            parent_id=record.parent_id,
            author=record.author,
            timestamp=record.timestamp,
            extra=record.extra or {},
        )
        candidates.append((where, comment))
    yield from finish_thread(thread, candidates, options.max_comment_chars)


def read_jsonl(path: Path, options: ReadOptions) -> Iterator[ParsedItem]:
    """Thread JSONL (a line with ``comments``) and flat JSONL lines, in any mix."""
    with path.open("rb") as fh:
        yield from read_jsonl_stream(fh, str(path), options)


def read_jsonl_stream(
    stream: Iterable[bytes], source: str = "<stdin>", options: ReadOptions | None = None
) -> Iterator[ParsedItem]:
    """JSONL threads or flat rows from an open byte stream (``-`` on the command line)."""
    options = options or ReadOptions()
    flat = _FlatAssembler(source, options.columns, options.max_comment_chars)
    for lineno, raw in enumerate(stream, 1):
        location = f"line {lineno}"
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield ErrorRecord(
                source, location, f"byte {raw[exc.start]:#04x} at offset {exc.start} is not UTF-8"
            )
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield ErrorRecord(source, location, f"malformed JSON: {exc.msg} at column {exc.colno}")
            continue
        except RecursionError:
            yield ErrorRecord(source, location, "malformed JSON: nested too deeply to read")
            continue
        except ValueError as exc:  # e.g. an integer literal over Python's digit limit
            yield ErrorRecord(source, location, f"malformed JSON: {exc}")
            continue
        if not isinstance(obj, dict):
            yield ErrorRecord(source, location, f"expected a JSON object, got {type(obj).__name__}")
            continue
        try:
            if isinstance(obj.get("comments"), list):
                yield from flat.flush()
                yield from _thread_from_line(obj, source, location, options)
            else:
                yield from flat.add(obj, location, lineno)
        except RecordError as exc:
            yield ErrorRecord(source, location, str(exc), exc.record_id)
        except Exception as exc:  # never let one record end the file: it is this record's error
            logger.debug("%s %s: unexpected failure", source, location, exc_info=True)
            rid = _record_id(obj.get("comment_id")) or _record_id(obj.get("id"))
            yield ErrorRecord(source, location, f"cannot read record: {type(exc).__name__}", rid)
    yield from flat.flush()


class _Lines:
    """Numbered lines of a text stream that keep the lines of the CSV record being read,
    so reading can start again on the line after a record that proved malformed."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._again: list[str] = []  # lines to hand out again, last first
        self.line = 0  # lines handed out so far
        self.record: list[str] = []
        self.record_start = 1

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._again.pop() if self._again else next(self._lines)
        self.line += 1
        self.record.append(line)
        return line

    def begin_record(self) -> None:
        self.record = []
        self.record_start = self.line + 1

    def drop_record_first_line(self) -> None:
        """Give up the current record's first line; its other lines are read again."""
        self._again.extend(reversed(self.record[1:]))
        self.line = self.record_start
        self.record = []


def read_csv(path: Path, options: ReadOptions, delimiter: str = ",") -> Iterator[ParsedItem]:
    """Flat CSV/TSV, streamed record by record (quoted newlines allowed).

    The CSV is read strictly: a quote that is never closed (or text right after
    a closing quote) makes the record that holds it one error row naming its
    first line, and reading goes on from the next line, so one stray quote
    cannot swallow the rows after it into a comment's text.
    """
    source = str(path)
    flat = _FlatAssembler(source, options.columns, options.max_comment_chars)
    # Let the csv module read any field size; the comment length limit is ours to report.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with path.open("rb") as raw:
        # newline="" so only \r and \n end lines (not U+0085 or U+2028 inside a field)
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        lines = _Lines(iter(text))
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        header: list[str] | None = None
        number = 0
        while True:
            lines.begin_record()
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                start = lines.record_start
                if header is not None:
                    number += 1
                yield ErrorRecord(
                    source,
                    f"row {number} (line {start})" if header is not None else f"line {start}",
                    f"malformed CSV: {exc} (an unterminated quote?) in the record starting "
                    f"on line {start}; reading went on from line {start + 1}",
                )
                lines.drop_record_first_line()
                reader = csv.reader(lines, delimiter=delimiter, strict=True)
                continue
            if not cells:  # a blank line
                continue
            if header is None:
                header = cells
                continue
            number += 1
            location = f"row {number} (line {lines.record_start})"
            if len(cells) > len(header):
                yield ErrorRecord(
                    source,
                    location,
                    f"{len(cells) - len(header)} more field(s) than the header has",
                )
                continue
            row: dict[str, Any] = dict.fromkeys(header)
            row.update(zip(header, cells, strict=False))
            bad = next(
                (k for k, v in row.items() if v is not None and _undecodable(v) is not None), None
            )
            if bad is not None:
                yield ErrorRecord(source, location, f"column {bad!r} has a byte that is not UTF-8")
                continue
            try:
                yield from flat.add(row, location, number)
            except RecordError as exc:
                yield ErrorRecord(source, location, str(exc), exc.record_id)
            except Exception as exc:  # never let one record end the file
                logger.debug("%s %s: unexpected failure", source, location, exc_info=True)
                yield ErrorRecord(source, location, f"cannot read record: {type(exc).__name__}")
    yield from flat.flush()


def read_parquet(path: Path, options: ReadOptions, batch_size: int = 2048) -> Iterator[ParsedItem]:
    """Flat Parquet, streamed batch by batch."""
    import pyarrow.parquet as pq

    source = str(path)
    flat = _FlatAssembler(source, options.columns, options.max_comment_chars)
    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            number += 1
            location = f"row {number}"
            try:
                yield from flat.add(row, location, number)
            except RecordError as exc:
                yield ErrorRecord(source, location, str(exc), exc.record_id)
            except Exception as exc:  # never let one record end the file
                logger.debug("%s %s: unexpected failure", source, location, exc_info=True)
                yield ErrorRecord(source, location, f"cannot read record: {type(exc).__name__}")
    yield from flat.flush()


def read_file(path: str | Path, options: ReadOptions | None = None) -> Iterator[ParsedItem]:
    """Threads and errors from one file of any supported kind.

    A file that cannot be opened or read yields one error naming it.
    """
    options = options or ReadOptions()
    path = Path(path)
    try:
        fmt = options.input_format or detect_format(path)
        if fmt in ("page", "html"):
            yield from read_page(path, fmt, options)
        elif fmt == "jsonl":
            yield from read_jsonl(path, options)
        elif fmt in ("csv", "tsv"):
            yield from read_csv(path, options, delimiter="\t" if fmt == "tsv" else ",")
        else:
            yield from read_parquet(path, options)
    except OSError as exc:
        yield ErrorRecord(str(path), "file", f"cannot read file: {exc.strerror or exc}")
    except Exception as exc:  # a corrupt Parquet footer, an unexpected layout: report, go on
        logger.debug("failed reading %s", path, exc_info=True)
        yield ErrorRecord(str(path), "file", f"cannot parse file: {type(exc).__name__}: {exc}")


def read_paths(
    paths: Iterable[str | Path], options: ReadOptions | None = None
) -> Iterator[ParsedItem]:
    """Threads and errors from files and folders, in order."""
    files, skipped = expand_paths(paths)
    for path in skipped:
        logger.info("skipped %s: not a supported input type", path)
    for path in files:
        yield from read_file(path, options)
