"""Checks every reader applies: a comment's text, and a thread's comments as a whole.

Each reader turns its records into candidate comments; :func:`finish_thread`
then yields one error row for each that cannot be scored (unreadable text,
a repeated id, a reply to nothing, a reply cycle) and the thread with the
rest, so every format reports the same problems the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, AnyStr

from classifier.io.options import ParsedItem, RecordError
from classifier.schema import Comment, ErrorRecord, Thread, text_problem

_SURROGATE = re.compile("[\udc80-\udcff]")


def undecodable(value: str) -> int | None:
    """Position of the first byte that was not UTF-8 (decoded as a lone surrogate), if any."""
    m = _SURROGATE.search(value)
    return m.start() if m else None


def id_of(value: Any) -> str | None:
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
    thread: Thread,
    candidates: list[tuple[int, str, Comment]],
    max_chars: int,
    found: Iterable[tuple[int, ErrorRecord]] = (),
) -> Iterator[ParsedItem]:
    """Check a thread's comments as a whole; yield its error rows in input order, then the thread.

    ``candidates`` are (position, location, comment) triples in source order,
    ``found`` the (position, error row) pairs its reader met on the way (records
    it could not read at all); a position is the record's place in the input
    (row or line number, or index in the thread), so that every error row comes
    out where its record was. A comment is an error if it is unreadable,
    repeats an id, replies to itself or to an id the thread does not have, or
    sits in a reply cycle.

    A reply to a comment that was itself an error is kept: its parent exists
    in the input, only its text could not be used (the reply is then read
    against the article).
    """
    errors = list(found)
    good: list[tuple[int, str, Comment]] = []
    ids: set[str] = set()  # every id the input has, usable or not
    kept: set[str] = set()
    for position, location, comment in candidates:
        try:
            if comment.id in kept:
                raise RecordError(f"duplicate comment id {comment.id!r} in thread", comment.id)
            ids.add(comment.id)
            check_comment(comment, max_chars)
        except RecordError as exc:
            errors.append(
                (position, ErrorRecord(thread.source, location, str(exc), exc.record_id, thread.id))
            )
            continue
        kept.add(comment.id)
        good.append((position, location, comment))
    parents = {c.id: c.parent_id for _, _, c in good}
    for position, location, comment in good:
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
            errors.append(
                (position, ErrorRecord(thread.source, location, error, comment.id, thread.id))
            )
        else:
            thread.comments.append(comment)
    yield from in_input_order(errors)
    yield thread


def in_input_order(errors: Iterable[tuple[int, ErrorRecord]]) -> Iterator[ErrorRecord]:
    """The error rows of (position, error row) pairs, by position (ties as given)."""
    for _, error in sorted(errors, key=lambda pair: pair[0]):
        yield error


class LineTooLong:
    """What :func:`bounded_lines` gives for a line over its limit: how much was read of it
    and whether its end was found (if not, the rest of the file was given up)."""

    def __init__(self, limit: int, ended: bool) -> None:
        self.limit = limit
        self.ended = ended

    def message(self, option: str = "--max-line-bytes") -> str:
        """The error row's text for this line."""
        rest = (
            "read past it"
            if self.ended
            else "no line end came within 4 times the limit, so the rest of the file was not read"
        )
        return f"the line is longer than the limit of {self.limit} ({option}); {rest}"


def bounded_lines(readline: Callable[[int], AnyStr], limit: int) -> Iterator[AnyStr | LineTooLong]:
    """Lines from ``readline`` (a binary or a text stream's), each at most ``limit`` long
    (line end aside); a longer one is a :class:`LineTooLong`, read past in chunks so that
    memory stays bounded whatever the input (a file with no line end, such as
    ``/dev/zero``, is given up after 4 times the limit instead of read for ever)."""
    while True:
        line = readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or _ends_line(line):
            yield line
            continue
        skipped, ended = len(line), False
        while skipped < 5 * limit:
            rest = readline(min(limit, 1 << 20))
            if not rest:
                ended = True  # the end of the file ends the line
                break
            skipped += len(rest)
            if _ends_line(rest):
                ended = True
                break
        yield LineTooLong(limit, ended)
        if not ended:
            return


def _ends_line(chunk: str | bytes) -> bool:
    # a binary readline ends lines at LF only; a text one (newline="") at CR, LF or CRLF
    if isinstance(chunk, bytes):
        return chunk.endswith(b"\n")
    return chunk.endswith(("\n", "\r"))
