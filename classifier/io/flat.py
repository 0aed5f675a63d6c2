"""The flat form (one comment a row, the article repeated on each row): CSV, TSV and Parquet.

Rows of one thread must be contiguous (as :mod:`classifier.io.writers`
writes them): holding every thread until the end of the file would not
stream. A thread id that comes back after another thread is read as a
second part of it, with a warning. :class:`FlatAssembler` groups rows into
threads for every flat reader, the JSONL one included; :func:`read_csv` and
:func:`read_parquet` stream their files into it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from classifier.io.checks import (
    LineTooLong,
    bounded_lines,
    finish_thread,
    id_of,
    in_input_order,
    undecodable,
)
from classifier.io.options import Columns, ParsedItem, ReadOptions, RecordError
from classifier.schema import (
    ID_CELL,
    STAMP_CELL,
    TEXT_CELL,
    Article,
    Comment,
    ErrorRecord,
    Thread,
    check_json_object,
    describe,
    stable_id,
)

logger = logging.getLogger(__name__)

#: Flat-form fields that are ids (strings or integers) and timestamps (strings, numbers, dates).
_ID_FIELDS = frozenset({"thread_id", "comment_id", "parent_id"})
_STAMP_FIELDS = frozenset({"timestamp", "article_published"})
_JSON_FIELDS = frozenset({"extra", "thread_extra"})


class FlatAssembler:
    """Groups contiguous flat rows into threads and checks them.

    A bad row's error row is held until its thread is finished (a reply to a
    missing parent is only known then), so that a file's error rows come out in
    input order: readers pass their own errors through :meth:`report` too.
    """

    def __init__(self, source: str, columns: Columns, max_chars: int) -> None:
        self.source = source
        self.columns = columns
        self.max_chars = max_chars
        self.current: Thread | None = None
        self.rows: list[tuple[int, str, Comment]] = []
        self.held: list[tuple[int, ErrorRecord]] = []
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
                rid = id_of(value) if name == "comment_id" else values.get("comment_id")
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

    def report(self, number: int, error: ErrorRecord) -> Iterator[ParsedItem]:
        """Record number ``number``'s error row, held while a thread before it is open."""
        if self.current is None and not self.held:
            yield error
        else:
            self.held.append((number, error))

    def add_or_error(
        self, row: Mapping[str, Any], location: str, number: int
    ) -> Iterator[ParsedItem]:
        """:meth:`add`, with a bad record turned into its error row: one record never ends
        the file."""
        try:
            yield from self.add(row, location, number)
        except RecordError as exc:
            error = ErrorRecord(self.source, location, str(exc), exc.record_id)
            yield from self.report(number, error)
        except Exception as exc:
            logger.debug("%s %s: unexpected failure", self.source, location, exc_info=True)
            error = ErrorRecord(self.source, location, f"cannot read record: {type(exc).__name__}")
            yield from self.report(number, error)

    def add(self, row: Mapping[str, Any], location: str, number: int) -> Iterator[ParsedItem]:
        """Take one flat row (raising :class:`RecordError` before any change if it is bad)."""
        cols = self._colmap(row.keys())
        cells = self._cells(row, cols)
        text = cells.get("text")
        comment_id = cells.get("comment_id")
        if "text" not in cols and comment_id:
            raise RecordError(
                "the record has no 'text' field (map another with --column text=NAME)", comment_id
            )
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
                number,
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

    def read_through(self, items: Iterator[ParsedItem]) -> Iterator[ParsedItem]:
        """A reader's ``items``, then the open thread. If reading fails partway (a corrupt
        Parquet row group, an I/O error), the open thread goes out with the rows read so far,
        and its error rows, before the failure goes on to
        :func:`classifier.io.readers.read_file`, which reports it: every record read yields
        a row or an error row, as in the threads finished before it."""
        try:
            yield from items
        except Exception:
            yield from self.flush()
            raise
        yield from self.flush()

    def flush(self) -> Iterator[ParsedItem]:
        """Finish the open thread: its rows' error rows and those held, in input order, then
        the thread."""
        thread, rows, held = self.current, self.rows, self.held
        self.current, self.rows, self.held = None, [], []
        if thread is None or (not rows and not self.article_rows):
            yield from in_input_order(held)
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
        yield from finish_thread(thread, rows, self.max_chars, held)


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


class _TooLong(Exception):
    """A line over ``max_line_bytes`` met while reading a CSV record."""

    def __init__(self, line: LineTooLong) -> None:
        super().__init__(line.message())
        self.line = line


#: Python 3.10's csv reader refuses NUL ("line contains NUL"; 3.11 reads it as any other
#: character). There, lines reach it with NUL swapped for a lone high surrogate, which text
#: decoded as UTF-8 (surrogateescape gives only U+DC80..U+DCFF) can never hold, and the
#: cells get NUL back (:func:`_unswap_nul`).
_SWAP_NUL = sys.version_info < (3, 11)
_NUL_STAND_IN = "\ud800"


def _unswap_nul(cells: list[str]) -> list[str]:
    return [c.replace(_NUL_STAND_IN, "\0") for c in cells] if _SWAP_NUL else cells


class _Lines:
    """Numbered lines of a text stream that keep the lines of the CSV record being read,
    so reading can start again on the line after a record that proved malformed. A line
    over the limit raises :class:`_TooLong` (through the csv reader) instead of being held."""

    def __init__(self, lines: Iterator[str | LineTooLong]) -> None:
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
        if isinstance(line, LineTooLong):
            raise _TooLong(line)
        if _SWAP_NUL and "\0" in line:
            line = line.replace("\0", _NUL_STAND_IN)
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


#: Field separators a CSV file is checked for when none is given, most common first.
DELIMITERS = (",", ";", "\t", "|")


def detect_delimiter(sample: str, default: str = ",") -> str:
    """The field separator of a CSV file from its first lines (``sample``).

    The header decides: the candidate (:data:`DELIMITERS`) it holds most often outside
    quotes; when it holds none, or two as often, :class:`csv.Sniffer` reads the sample;
    failing that, ``default``. A one-column file keeps ``default``.
    """
    lines = [line for line in sample.splitlines() if line.strip()]
    if not lines:
        return default
    header = re.sub(r'"[^"]*"', "", lines[0])  # a quoted header name may hold anything
    counts = {d: header.count(d) for d in DELIMITERS}
    ranked = sorted(DELIMITERS, key=lambda d: -counts[d])
    if counts[ranked[0]] and counts[ranked[0]] > counts[ranked[1]]:
        return ranked[0]
    try:
        return csv.Sniffer().sniff("\n".join(lines[:20]), delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return default


def read_csv(
    path: Path, options: ReadOptions, delimiter: str | None = None
) -> Iterator[ParsedItem]:
    """Flat CSV/TSV, streamed record by record (quoted newlines allowed).

    The delimiter is ``options.delimiter`` (``--delimiter``), else ``delimiter`` (a
    ``.tsv`` file's tab), else detected from the first lines (:func:`detect_delimiter`):
    a semicolon-separated export named ``.csv`` is read as one. A file whose header has
    no comment text column (nor a comment id) gives one error row naming the columns it
    saw, instead of rows read as comment-less articles; a file with no rows says so too.

    The CSV is read strictly: a quote that is never closed (or text right after
    a closing quote) makes the record that holds it one error row naming its
    first line, and reading goes on from the next line, so one stray quote
    cannot swallow the rows after it into a comment's text. A line or a field over
    ``options.max_line_bytes`` is an error row too, and memory stays bounded.
    """
    chosen = options.delimiter or delimiter
    if chosen is None:
        with path.open("rb") as fh:
            sample = fh.read(64 * 1024).decode("utf-8-sig", errors="replace")
        chosen = detect_delimiter(sample)
        logger.debug("%s: read with the delimiter %r", path, chosen)
    flat = FlatAssembler(str(path), options.columns, options.max_comment_chars)
    yield from flat.read_through(_csv_items(path, flat, chosen, options.max_line_bytes))


def _csv_items(
    path: Path, flat: FlatAssembler, delimiter: str, max_line: int
) -> Iterator[ParsedItem]:
    source = str(path)
    # One field may be as long as one record may; the comment length limit is ours to report.
    csv.field_size_limit(min(sys.maxsize, max_line, 2**31 - 1))
    with path.open("rb") as raw:
        # newline="" so only \r and \n end lines (not U+0085 or U+2028 inside a field)
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        lines = _Lines(bounded_lines(text.readline, max_line))
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        header: list[str] | None = None
        number = 0
        while True:
            lines.begin_record()
            try:
                cells = _unswap_nul(next(reader))
            except StopIteration:
                break
            except (csv.Error, _TooLong) as exc:
                start = lines.record_start
                if header is not None:
                    number += 1
                where = f"row {number} (line {start})" if header is not None else f"line {start}"
                if isinstance(exc, _TooLong):
                    message = f"line {lines.line}: {exc.line.message()}"
                else:
                    message = (
                        f"malformed CSV: {exc} (an unterminated quote?) in the record starting "
                        f"on line {start}; reading went on from line {start + 1}"
                    )
                yield from flat.report(number, ErrorRecord(source, where, message))
                if isinstance(exc, _TooLong):
                    if not exc.line.ended:
                        return
                    lines.record = []
                else:
                    lines.drop_record_first_line()
                reader = csv.reader(lines, delimiter=delimiter, strict=True)
                continue
            if not cells:  # a blank line
                continue
            if header is None:
                header = cells
                continue
            number += 1
            if number == 1 and (problem := _no_comments(header, flat.columns, delimiter)):
                yield ErrorRecord(source, "header (line 1)", problem)
                return
            location = f"row {number} (line {lines.record_start})"
            if len(cells) > len(header):
                error = ErrorRecord(
                    source,
                    location,
                    f"{len(cells) - len(header)} more field(s) than the header has",
                )
                yield from flat.report(number, error)
                continue
            row: dict[str, Any] = dict.fromkeys(header)
            row.update(zip(header, cells, strict=False))
            bad = next(
                (k for k, v in row.items() if v is not None and undecodable(v) is not None), None
            )
            if bad is not None:
                error = ErrorRecord(
                    source, location, f"column {bad!r} has a byte that is not UTF-8"
                )
                yield from flat.report(number, error)
                continue
            yield from flat.add_or_error(row, location, number)
        if number == 0:
            seen = f"only a header, with the columns {header}" if header else "no line at all"
            yield ErrorRecord(source, "file", f"no comments: the file has {seen}")


def _no_comments(header: list[str], columns: Columns, delimiter: str) -> str | None:
    """Why no row under ``header`` can be a comment (no text column, no comment id), if so:
    the error row names the columns seen and the delimiter they were split on."""
    found = columns.resolve(header)
    if "text" in found or "comment_id" in found:
        return None
    shown = header if len(header) <= 20 else [*header[:20], "..."]
    return (
        f"no comments: no column holds the comment text; the columns are {shown} (split on "
        f"{delimiter!r}); name the text column with --column text=NAME, or the separator "
        "with --delimiter"
    )


def read_parquet(path: Path, options: ReadOptions, batch_size: int = 2048) -> Iterator[ParsedItem]:
    """Flat Parquet, streamed batch by batch."""
    import pyarrow.parquet as pq

    flat = FlatAssembler(str(path), options.columns, options.max_comment_chars)

    def items() -> Iterator[ParsedItem]:
        number = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
            for row in batch.to_pylist():
                number += 1
                yield from flat.add_or_error(row, f"row {number}", number)

    yield from flat.read_through(items())
