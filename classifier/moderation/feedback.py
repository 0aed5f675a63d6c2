"""Moderators' decisions, kept durably: what ``comments:suggestscore`` stores and
``threadguard calibrate --feedback`` reads.

A hosted API took moderators' corrections and the site never saw them again; here they
land in one append-only JSONL file on the site's own disk (``threadguard serve --feedback
FILE``), each with the scores the model gave the comment and the model's version, so that
the site's thresholds can be fitted to its own moderators (:func:`read_feedback`).

Why a JSONL file, written this way:

- append-only, one ``write`` of one whole line per record, flushed and ``fsync``-ed before
  the request is answered: an answered decision survives a crash;
- a crash mid-write leaves at most a torn last line, which readers skip (with a warning)
  and the next append starts on a fresh line rather than gluing onto;
- an exclusive ``flock`` around read-new-lines, check, append: several ``--workers``
  processes may share the file and a decision retried by its client (Coral retries) is
  stored once (its ``key`` hashes the community, client token, text and suggestion);
  a later, different decision on the same comment is a new record, and readers keep the
  latest per comment.

Records carry a SHA-256 of the text, never the text (log lines never carry it either).
This module imports only the standard library.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not on Windows: one process only there
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

#: Version of a record's fields (a reader refuses records of a later one).
RECORD_FORMAT = 1
#: Coral's moderation verdicts, as suggestscore attributes, and what each says of every
#: label: a deleted comment should have been held (1), an approved one not (0).
VERDICT_GOLD: dict[str, int] = {"DELETED": 1, "APPROVED": 0}


def text_digest(text: str) -> str:
    """The SHA-256 of a comment's text: identifies it without keeping it."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def record_key(
    community: str | None, client_token: str | None, digest: str, suggested: Mapping[str, float]
) -> str:
    """The key two copies of one decision share (a client's retry), and no other."""
    material = json.dumps(
        [community or "", client_token or "", digest, sorted(suggested.items())],
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def comment_key(record: Mapping[str, Any]) -> str:
    """What identifies the comment a record judges: its community and client token
    (Coral's ``comment:<id>``), else its text's digest."""
    return (
        f"{record.get('community') or ''}\x00{record.get('client_token') or record['text_sha256']}"
    )


class FeedbackStore:
    """One append-only JSONL file of moderators' decisions (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)
        self._keys: set[str] = set()
        self._read_to = 0  # bytes of the file whose keys are in _keys
        self._lock = threading.Lock()  # threads of this process; flock: other processes

    def append(self, record: dict[str, Any]) -> bool:
        """Store ``record`` (which has its ``key``) unless a record with that key is
        stored; ``True`` if it was written. Durable (fsync-ed) when this returns."""
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock, open(self.path, "a+b") as f:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
            self._catch_up(f)
            if record["key"] in self._keys:
                return False
            f.seek(0, os.SEEK_END)
            end = f.tell()
            if end:
                f.seek(end - 1)
                if f.read(1) != b"\n":  # a torn last line: start ours on a line of its own
                    line = b"\n" + line
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
            self._keys.add(record["key"])
            self._read_to = end + len(line)
            return True

    def _catch_up(self, f: Any) -> None:
        """Add the keys of lines appended since we last read (by us or another worker)."""
        f.seek(self._read_to)
        data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        for raw in complete.splitlines():
            try:
                self._keys.add(json.loads(raw)["key"])
            except (ValueError, KeyError, TypeError):
                continue
        self._read_to += len(complete)


def read_feedback(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a feedback file, in order; a line that does not parse (a torn
    last line after a crash) is skipped with a warning."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                logger.warning("%s line %d: not a whole record (skipped)", path, number)
                continue
            if not isinstance(record, dict) or record.get("format", 0) > RECORD_FORMAT:
                logger.warning("%s line %d: not a record this version reads", path, number)
                continue
            yield record


def now() -> str:
    """The time a decision is received, in UTC (ISO 8601)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
