"""Read comment threads from files: pages, thread JSONL, flat JSONL, CSV and Parquet.

Every reader is a generator of :class:`~classifier.schema.Thread` and
:class:`~classifier.schema.ErrorRecord` items, reading its input in a stream
(line by line, CSV record by record, Parquet batch by batch) so a file of any
size is read in bounded memory; only one thread is held at a time.

Accounting is exact: every input record (a comment; an article-only row in
the flat form) becomes part of a yielded thread or one error record.

The *flat* form has one comment a row with a thread id; the article is
carried by ``article_*`` columns repeated on each row. Rows of one thread
must be contiguous (as :mod:`classifier.writers` writes them): holding
every thread until the end of the file would not stream. A thread id that
comes back after another thread is read as a second part of it, with a
warning.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from classifier.schema import Article, Comment, ErrorRecord, Thread, stable_id

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


def _undecodable(value: str) -> int | None:
    """Position of the first byte that was not UTF-8 (decoded as a lone surrogate), if any."""
    m = _SURROGATE.search(value)
    return m.start() if m else None


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from a Parquet/pandas null
        return None
    return value if isinstance(value, str) else str(value)


def check_comment(comment: Comment, max_chars: int) -> None:
    """Raise :class:`RecordError` if ``comment`` cannot be scored."""
    for name in ("id", "text", "parent_id", "author", "timestamp"):
        value = getattr(comment, name)
        if isinstance(value, str) and (pos := _undecodable(value)) is not None:
            raise RecordError(
                f"field {name!r} has a byte that is not UTF-8 at character {pos}", comment.id
            )
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

    def add(self, row: Mapping[str, Any], location: str, number: int) -> Iterator[ParsedItem]:
        cols = self._colmap(row.keys())

        def get(name: str) -> str | None:
            # CSV has no null: an empty cell and a missing value are the same
            return (_as_text(row.get(cols[name])) or None) if name in cols else None

        thread_id = get("thread_id") or stable_id("file", Path(self.source).name)
        if self.current is None or self.current.id != thread_id:
            yield from self.flush()
            extra_raw = get("thread_extra")
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
                extra=_load_json_object(extra_raw, "thread_extra") if extra_raw else {},
            )
        text = get("text")
        comment_id = get("comment_id")
        if not text and not comment_id:
            # an article-only row: a thread that has no comments (see writers.py)
            self.article_rows += 1
            return
        used = set(cols.values())
        extra: dict[str, Any] = {}
        if "extra" in cols and (blob := row.get(cols["extra"])):
            extra.update(_load_json_object(blob, "extra"))
        extra.update({k: v for k, v in row.items() if k not in used and v not in (None, "")})
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


def _load_json_object(value: Any, name: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        obj = json.loads(value)
    except (TypeError, json.JSONDecodeError) as exc:
        raise RecordError(f"column {name!r} is not a JSON object: {exc}") from None
    if not isinstance(obj, dict):
        raise RecordError(f"column {name!r} is not a JSON object")
    return obj


def _thread_from_line(
    obj: dict[str, Any], source: str, location: str, options: ReadOptions
) -> Iterator[ParsedItem]:
    """One thread JSONL line: the thread, with an error for each comment that is bad."""
    thread = Thread.from_dict(obj)
    thread.source = thread.source or source
    candidates: list[tuple[str, Comment]] = []
    for i, raw in enumerate(obj["comments"], 1):
        where = f"{location} comment {i}"
        if not isinstance(raw, dict):
            yield ErrorRecord(thread.source, where, "comment is not a JSON object", None, thread.id)
            continue
        try:
            comment = Comment(
                **{"id": str(raw.get("id") or i), **{k: v for k, v in raw.items() if k != "id"}}
            )
        except TypeError as exc:
            yield ErrorRecord(
                thread.source, where, f"bad comment: {exc}", _as_text(raw.get("id")), thread.id
            )
            continue
        if not isinstance(comment.text, str):
            comment.text = "" if comment.text is None else str(comment.text)
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
        if not isinstance(obj, dict):
            yield ErrorRecord(source, location, f"expected a JSON object, got {type(obj).__name__}")
            continue
        try:
            if isinstance(obj.get("comments"), list):
                yield from flat.flush()
                yield from _thread_from_line(obj, source, location, options)
            else:
                yield from flat.add(obj, location, lineno)
        except (RecordError, ValueError) as exc:
            rid = _as_text(obj.get("id") or obj.get("comment_id"))
            yield ErrorRecord(source, location, str(exc), rid)
    yield from flat.flush()


def read_csv(path: Path, options: ReadOptions, delimiter: str = ",") -> Iterator[ParsedItem]:
    """Flat CSV/TSV, streamed record by record (quoted newlines allowed)."""
    source = str(path)
    flat = _FlatAssembler(source, options.columns, options.max_comment_chars)
    # Let the csv module read any field size; the comment length limit is ours to report.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    # newline="" so only \r and \n end lines (not U+0085 or U+2028 inside a field)
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as text:
        reader = csv.DictReader(text, delimiter=delimiter)
        number = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                yield ErrorRecord(source, f"line {reader.line_num}", f"malformed CSV: {exc}")
                continue
            number += 1
            location = f"row {number} (line {reader.line_num})"
            if None in row:  # more fields than the header
                extra_fields = row.pop(None)
                yield ErrorRecord(
                    source, location, f"{len(extra_fields)} more field(s) than the header has"
                )
                continue
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
