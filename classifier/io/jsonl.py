"""JSONL input: thread lines (an object with ``comments``) and flat lines, in any mix.

A line that is not JSON at all (malformed, nested too deeply, not UTF-8) is
one error row. A thread line whose own fields are bad gives one error row for
each of its comments. Flat lines go through the same
:class:`~classifier.io.flat.FlatAssembler` as CSV and Parquet rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from classifier.io.checks import LineTooLong, bounded_lines, finish_thread, id_of
from classifier.io.flat import FlatAssembler
from classifier.io.options import ParsedItem, ReadOptions, RecordError
from classifier.schema import (
    Comment,
    CommentRecord,
    ErrorRecord,
    Thread,
    describe,
    json_problem,
)

logger = logging.getLogger(__name__)


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
        thread_id = id_of(obj.get("id"))
        if not isinstance(comments, list) or not comments:
            yield ErrorRecord(source, location, str(exc), None, thread_id)
            return
        for i, raw in enumerate(comments, 1):
            rid = id_of(raw.get("id")) if isinstance(raw, dict) else None
            yield ErrorRecord(
                source, f"{location} comment {i}", f"bad thread: {exc}", rid, thread_id
            )
        return
    thread.source = thread.source or source
    candidates: list[tuple[int, str, Comment]] = []
    unread: list[tuple[int, ErrorRecord]] = []
    for i, raw in enumerate(obj["comments"], 1):
        where = f"{location} comment {i}"
        if not isinstance(raw, dict):
            error = ErrorRecord(
                thread.source, where, "comment is not a JSON object", None, thread.id
            )
            unread.append((i, error))
            continue
        try:
            record = CommentRecord.model_validate(raw)
        except ValidationError as exc:
            error = ErrorRecord(
                thread.source,
                where,
                f"bad comment: {describe(exc)}",
                id_of(raw.get("id")),
                thread.id,
            )
            unread.append((i, error))
            continue
        comment = Comment(
            id=record.id or str(i),
            text=record.text or "",
            parent_id=record.parent_id,
            author=record.author,
            timestamp=record.timestamp,
            extra=record.extra or {},
        )
        candidates.append((i, where, comment))
    yield from finish_thread(thread, candidates, options.max_comment_chars, unread)


def read_jsonl(path: Path, options: ReadOptions) -> Iterator[ParsedItem]:
    """Thread JSONL (a line with ``comments``) and flat JSONL lines, in any mix."""
    with path.open("rb") as fh:
        yield from read_jsonl_stream(fh, str(path), options)


def read_jsonl_stream(
    stream: Iterable[bytes], source: str = "<stdin>", options: ReadOptions | None = None
) -> Iterator[ParsedItem]:
    """JSONL threads or flat rows from an open byte stream (``-`` on the command line)."""
    options = options or ReadOptions()
    flat = FlatAssembler(source, options.columns, options.max_comment_chars)
    readline = getattr(stream, "readline", None)
    # a file's lines are read at most max_line_bytes at a time: one line cannot take the memory
    lines: Iterable[bytes | LineTooLong] = (
        bounded_lines(readline, options.max_line_bytes) if readline is not None else stream
    )

    def items() -> Iterator[ParsedItem]:
        for lineno, raw in enumerate(lines, 1):
            location = f"line {lineno}"
            if isinstance(raw, LineTooLong):
                yield from flat.report(lineno, ErrorRecord(source, location, raw.message()))
                continue
            if not raw.strip():
                continue
            try:
                obj = _parse_line(raw)
            except RecordError as exc:
                yield from flat.report(lineno, ErrorRecord(source, location, str(exc)))
                continue
            try:
                if isinstance(obj.get("comments"), list):
                    yield from flat.flush()
                    yield from _thread_from_line(obj, source, location, options)
                else:
                    yield from flat.add(obj, location, lineno)
            except RecordError as exc:
                error = ErrorRecord(source, location, str(exc), exc.record_id)
                yield from flat.report(lineno, error)
            except Exception as exc:  # never let one record end the file: it is this record's error
                logger.debug("%s %s: unexpected failure", source, location, exc_info=True)
                rid = id_of(obj.get("comment_id")) or id_of(obj.get("id"))
                error = ErrorRecord(
                    source, location, f"cannot read record: {type(exc).__name__}", rid
                )
                yield from flat.report(lineno, error)

    yield from flat.read_through(items())


def _parse_line(raw: bytes) -> dict[str, Any]:
    """One JSONL line's object (:class:`RecordError` saying what is wrong with it)."""
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise RecordError(
            f"byte {raw[exc.start]:#04x} at offset {exc.start} is not UTF-8"
        ) from None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        # the character column in the line (json's colno restarts after a newline character)
        where = "the end of the line" if exc.pos >= len(line) else f"column {exc.pos + 1}"
        raise RecordError(f"malformed JSON: {json_problem(exc)} at {where}") from None
    except RecursionError:
        raise RecordError("malformed JSON: nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer literal over Python's digit limit
        raise RecordError(f"malformed JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    return obj
