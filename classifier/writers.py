"""Write threads as thread JSONL, or in the flat form as CSV or Parquet.

Writers stream: they take threads one at a time and hold at most one
Parquet row group in memory. What they write, :mod:`classifier.readers`
reads back into equal threads.

The flat form has the columns :data:`FLAT_COLUMNS`: one row a comment, the
article repeated on each row, ``extra`` and ``thread_extra`` as JSON text.
A thread without comments is one article-only row (empty ``comment_id`` and
``text``) so that it survives the round trip.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from classifier.schema import Thread

OutputFormat = Literal["jsonl", "csv", "parquet"]
OUTPUT_FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet")

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


class ThreadWriter(Protocol):
    def write(self, thread: Thread) -> None: ...


class JsonlWriter:
    """One thread a line."""

    def __init__(self, fh: IO[str]) -> None:
        self.fh = fh

    def write(self, thread: Thread) -> None:
        self.fh.write(json.dumps(thread.to_dict(), ensure_ascii=False) + "\n")


class CsvWriter:
    """Flat form, CSV with a header."""

    def __init__(self, fh: IO[str]) -> None:
        self.writer = csv.DictWriter(fh, fieldnames=FLAT_COLUMNS)
        self.writer.writeheader()

    def write(self, thread: Thread) -> None:
        self.writer.writerows(flat_rows(thread))


class ParquetWriter:
    """Flat form, Parquet, all columns strings; rows are buffered into row groups."""

    def __init__(self, path: Path, row_group_size: int = 10_000) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.schema = pa.schema([(name, pa.string()) for name in FLAT_COLUMNS])
        self.writer = pq.ParquetWriter(str(path), self.schema)
        self.rows: list[dict[str, Any]] = []
        self.row_group_size = row_group_size

    def write(self, thread: Thread) -> None:
        self.rows.extend(flat_rows(thread))
        if len(self.rows) >= self.row_group_size:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(self.pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self.flush()
        self.writer.close()


@contextmanager
def open_writer(output: str | Path | None, fmt: OutputFormat) -> Iterator[ThreadWriter]:
    """A thread writer for ``output`` (``None`` or ``-``: standard output)."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; choose from {OUTPUT_FORMATS}")
    to_stdout = output is None or str(output) == "-"
    if fmt == "parquet":
        if to_stdout:
            raise ValueError("Parquet output needs a file: give --output FILE")
        pw = ParquetWriter(Path(str(output)))
        try:
            yield pw
        finally:
            pw.close()
        return
    with ExitStack() as stack:
        if to_stdout:
            fh: IO[str] = sys.stdout
            stack.callback(fh.flush)
        else:
            newline = "" if fmt == "csv" else None
            fh = stack.enter_context(Path(str(output)).open("w", encoding="utf-8", newline=newline))
        yield JsonlWriter(fh) if fmt == "jsonl" else CsvWriter(fh)
