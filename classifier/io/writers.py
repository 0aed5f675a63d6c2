"""Write threads as thread JSONL, or in the flat form as CSV or Parquet.

Writers stream: they take threads one at a time and hold at most one
Parquet row group in memory. What they write, :mod:`classifier.io.readers`
reads back into equal threads.

The flat form has the columns :data:`FLAT_COLUMNS`: one row a comment, the
article repeated on each row, ``extra`` and ``thread_extra`` as JSON text.
A thread without comments is one article-only row (empty ``comment_id`` and
``text``) so that it survives the round trip.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import IO, Any, Literal, Protocol, cast

from classifier.io.outputs import OutputError, is_stdout, open_text_output, output_file
from classifier.schema import Thread

OutputFormat = Literal["jsonl", "csv", "parquet"]
OUTPUT_FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet")

# Python < 3.11's csv writer refuses NUL in a field (bpo-27580).
_CSV_REFUSES_NUL = sys.version_info < (3, 11)

FLAT_COLUMNS: tuple[str, ...] = (
    "thread_id",
    "source",
    "article_url",
    "article_title",
    "article_body",
    "article_published",
    "article_author",
    "thread_extra",
    "comment_id",
    "parent_id",
    "author",
    "timestamp",
    "text",
    "extra",
)


def flat_rows(thread: Thread) -> Iterator[dict[str, str | None]]:
    """The flat-form rows of one thread."""
    article = {
        "thread_id": thread.id,
        "source": thread.source,
        "article_url": thread.article.url,
        "article_title": thread.article.title,
        "article_body": thread.article.body,
        "article_published": thread.article.published,
        "article_author": thread.article.author,
        "thread_extra": json.dumps(thread.extra, ensure_ascii=False) if thread.extra else None,
    }
    if not thread.comments:
        yield {**article, "comment_id": None, "parent_id": None, "author": None,
               "timestamp": None, "text": None, "extra": None}  # fmt: skip
    for c in thread.comments:
        yield {
            **article,
            "comment_id": c.id,
            "parent_id": c.parent_id,
            "author": c.author,
            "timestamp": c.timestamp,
            "text": c.text,
            "extra": json.dumps(c.extra, ensure_ascii=False) if c.extra else None,
        }


# Characters that JSON leaves raw but that str.splitlines() and some JSONL readers take as a
# line break; written escaped so one row stays one line for every reader.
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_LINE_BREAK_RE = re.compile("[\x85\u2028\u2029]")


def jsonl_line(obj: Any) -> str:
    """``obj`` as one JSON Lines line (UTF-8 text kept readable), newline included."""
    text = json.dumps(obj, ensure_ascii=False)
    return _LINE_BREAK_RE.sub(lambda m: _LINE_BREAKS[m.group()], text) + "\n"


class RowWriter(Protocol):
    def write(self, row: dict[str, Any]) -> None: ...


class JsonlRowWriter:
    """Any JSON-able rows, one a line."""

    def __init__(self, fh: IO[str]) -> None:
        self.fh = fh

    def write(self, row: dict[str, Any]) -> None:
        self.fh.write(jsonl_line(row))


class CsvRowWriter:
    """Flat rows (scalar values) under a header: ``columns``, or the first row's keys."""

    def __init__(self, fh: IO[str], columns: Sequence[str] | None = None) -> None:
        self.fh = fh
        self.writer: csv.DictWriter[str] | None = None
        if columns is not None:
            self._start(columns)

    def _start(self, columns: Sequence[str]) -> None:
        self.writer = csv.DictWriter(self.fh, fieldnames=list(columns))
        self.writer.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        if self.writer is None:
            self._start(list(row))
        assert self.writer is not None
        if _CSV_REFUSES_NUL and any(isinstance(v, str) and "\0" in v for v in row.values()):
            self._write_with_nul(row)
            return
        self.writer.writerow(row)

    def _write_with_nul(self, row: dict[str, Any]) -> None:
        """Python 3.10's csv writer raises on NUL ("need to escape"; 3.11 writes it as is):
        write the row with a stand-in character no value holds, then put NUL back, so the
        line is the one 3.11+ writes."""
        assert self.writer is not None
        texts = "".join(v for v in row.values() if isinstance(v, str))
        stand_in = next(chr(c) for c in range(0xE000, 0x110000) if chr(c) not in texts)
        swapped = {
            k: v.replace("\0", stand_in) if isinstance(v, str) else v for k, v in row.items()
        }
        buffer = io.StringIO()
        csv.DictWriter(buffer, fieldnames=self.writer.fieldnames).writerow(swapped)
        self.fh.write(buffer.getvalue().replace(stand_in, "\0"))


class ParquetRowWriter:
    """Flat rows buffered into row groups; ``columns`` makes every column a string,
    otherwise the first row group fixes the schema."""

    def __init__(
        self,
        path: Path,
        columns: Sequence[str] | None = None,
        row_group_size: int = 10_000,
        *,
        empty_columns: Sequence[str] = (),
        name: str | Path | None = None,
    ) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa, self.pq = pa, pq
        self.path = path
        self.name = str(name or path)
        self.schema = pa.schema([(c, pa.string()) for c in columns]) if columns else None
        # the schema of a file that gets no row at all (still a valid, empty Parquet file)
        self.empty_schema = pa.schema([(c, pa.string()) for c in empty_columns])
        self.writer: Any = None
        self.rows: list[dict[str, Any]] = []
        self.row_group_size = row_group_size

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.row_group_size:
            self.flush()

    def flush(self) -> None:
        if not self.rows and (self.writer is not None or self.schema is None):
            return
        table = self.pa.Table.from_pylist(self.rows, schema=self.schema)
        try:
            if self.writer is None:
                self.schema = table.schema
                self.writer = self.pq.ParquetWriter(str(self.path), self.schema)
            self.writer.write_table(table)
        except OSError as exc:  # pyarrow's I/O errors are OSErrors: disk full, permission
            raise OutputError(f"cannot write {self.name}: {exc.strerror or exc}") from None
        self.rows = []

    def close(self) -> None:
        """Write what is buffered and the footer; with no row at all, a valid empty file
        (a reader of the output should find a table with no rows, not no file)."""
        if self.writer is None and not self.rows and self.schema is None:
            self.schema = self.empty_schema
        self.flush()
        if self.writer is not None:
            try:
                self.writer.close()
            except OSError as exc:
                raise OutputError(f"cannot write {self.name}: {exc.strerror or exc}") from None


@contextmanager
def open_row_writer(
    output: str | Path | None,
    fmt: OutputFormat,
    columns: Sequence[str] | None = None,
    empty_columns: Sequence[str] = (),
) -> Iterator[RowWriter]:
    """A writer of rows for ``output`` (``None`` or ``-``: standard output).

    JSONL takes nested rows; CSV and Parquet take flat ones, under ``columns``
    when given (else the first row's keys; ``empty_columns`` when no row comes, so
    that an empty run still writes a valid file). A file is written aside and renamed
    into place when the writer closes without error, and locked meanwhile
    (:func:`classifier.io.outputs.output_file`); a failed write is an
    :class:`~classifier.io.outputs.OutputError` naming ``output``.
    """
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; choose from {OUTPUT_FORMATS}")
    to_stdout = is_stdout(output)
    if fmt == "parquet":
        if to_stdout:
            raise ValueError("Parquet output needs a file: give --output FILE")
        with output_file(str(output)) as part:
            pw = ParquetRowWriter(part, columns, empty_columns=empty_columns, name=str(output))
            try:
                yield pw
            except BaseException:
                with suppress(Exception):  # the part file is removed; its footer does not matter
                    if pw.writer is not None:
                        pw.writer.close()
                raise
            pw.close()
        return
    with ExitStack() as stack:
        if to_stdout:
            fh: IO[str] = sys.stdout
            stack.callback(fh.flush)
        else:
            newline = "" if fmt == "csv" else None
            fh = cast(IO[str], stack.enter_context(open_text_output(str(output), newline)))
        if fmt == "jsonl":
            yield JsonlRowWriter(fh)
            return
        writer = CsvRowWriter(fh, columns)
        yield writer
        if writer.writer is None and empty_columns:
            writer._start(empty_columns)  # an empty run: the header alone


class ThreadWriter:
    """Writes threads: one JSONL line each, or their flat rows (CSV, Parquet)."""

    def __init__(self, rows: RowWriter, flat: bool) -> None:
        self.rows = rows
        self.flat = flat

    def write(self, thread: Thread) -> None:
        if self.flat:
            for row in flat_rows(thread):
                self.rows.write(row)
        else:
            self.rows.write(thread.to_dict())


@contextmanager
def open_writer(output: str | Path | None, fmt: OutputFormat) -> Iterator[ThreadWriter]:
    """A thread writer for ``output`` (``None`` or ``-``: standard output)."""
    flat = fmt != "jsonl"
    with open_row_writer(output, fmt, FLAT_COLUMNS if flat else None) as rows:
        yield ThreadWriter(rows, flat)
