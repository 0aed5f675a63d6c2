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
must be contiguous (as :mod:`classifier.io.writers` writes them): holding
every thread until the end of the file would not stream. A thread id that
comes back after another thread is read as a second part of it, with a
warning.

The work is split by format: :mod:`classifier.io.options` (formats, columns,
options, finding files), :mod:`classifier.io.checks` (what every reader checks),
:mod:`classifier.io.jsonl`, :mod:`classifier.io.flat` (CSV, TSV, Parquet) and
:mod:`classifier.io.pages` (article pages); this module picks the reader for a
file and reads pages.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from classifier.io.checks import finish_thread, undecodable
from classifier.io.flat import read_csv, read_parquet
from classifier.io.jsonl import read_jsonl
from classifier.io.options import (
    InputFormat,
    ParsedItem,
    ReadOptions,
    detect_format,
    expand_paths,
)
from classifier.schema import ErrorRecord

logger = logging.getLogger(__name__)


def read_page(path: Path, fmt: InputFormat, options: ReadOptions) -> Iterator[ParsedItem]:
    """A page file (text or HTML) is one thread."""
    from classifier.io.pages import parse_page_html, parse_page_text

    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="surrogateescape")
    if (pos := undecodable(text)) is not None:
        logger.warning("%s: bytes that are not UTF-8 near character %d were replaced", path, pos)
        text = raw.decode("utf-8", errors="replace")
    thread = parse_page_html(text, str(path)) if fmt == "html" else parse_page_text(text, str(path))
    candidates = [(i, f"comment {i}", c) for i, c in enumerate(thread.comments, 1)]
    thread.comments = []
    yield from finish_thread(thread, candidates, options.max_comment_chars)


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
            yield from read_csv(path, options, delimiter="\t" if fmt == "tsv" else None)
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
