"""The comment-thread data model, defined once.

A :class:`Thread` is one article (or blog post) and the reader comments under
it. Every :class:`Comment` says whether it answers the article
(``parent_id is None``) or another comment of the same thread; stance is
taken toward that target. Fields a source carried that the model has no slot
for are kept in ``extra`` rather than dropped.

Bad input never disappears: a reader yields an :class:`ErrorRecord` for every
record it cannot turn into a comment, so ``input records == comments +
errors`` always holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

JSONValue = Any


@dataclass
class Article:
    """The article a thread hangs under: the target of its top-level comments."""

    id: str
    url: str | None = None
    title: str = ""
    body: str = ""
    published: str | None = None
    author: str | None = None

    @property
    def lead(self) -> str:
        """The title and first paragraph: what a top-level comment takes a stance toward."""
        first = next((p.strip() for p in self.body.split("\n") if p.strip()), "")
        return f"{self.title}\n{first}".strip()


@dataclass
class Comment:
    """One reader comment.

    ``parent_id`` is ``None`` for a comment on the article itself, else the id
    of the comment it replies to (which belongs to the same thread).
    """

    id: str
    text: str
    parent_id: str | None = None
    author: str | None = None
    timestamp: str | None = None
    extra: dict[str, JSONValue] = field(default_factory=dict)

    @property
    def replies_to(self) -> Literal["article", "comment"]:
        """What this comment answers: the article, or another comment."""
        return "article" if self.parent_id is None else "comment"


@dataclass
class Thread:
    """An article and its comments, in the order the source gave them."""

    id: str
    source: str
    article: Article
    comments: list[Comment] = field(default_factory=list)
    extra: dict[str, JSONValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, JSONValue]:
        """Plain-JSON form (the thread JSONL line)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, JSONValue]) -> Thread:
        """Inverse of :meth:`to_dict`. Raises ``ValueError`` naming a missing or bad field."""
        if not isinstance(data, dict):
            raise ValueError(f"a thread must be a JSON object, got {type(data).__name__}")
        for key in ("id", "article", "comments"):
            if key not in data:
                raise ValueError(f"thread is missing the field {key!r}")
        article = data["article"]
        if not isinstance(article, dict):
            raise ValueError("field 'article' must be an object")
        if not isinstance(data["comments"], list):
            raise ValueError("field 'comments' must be a list")
        try:
            art = Article(**{"id": str(data["id"]), **article})
        except TypeError as exc:
            raise ValueError(f"field 'article': {exc}") from None
        return cls(
            id=str(data["id"]),
            source=str(data.get("source") or ""),
            article=art,
            comments=[],  # comments are validated one by one by the reader
            extra=dict(data.get("extra") or {}),
        )


@dataclass
class ErrorRecord:
    """An input record that could not be read, with where it was and what was wrong."""

    source: str
    location: str
    message: str
    record_id: str | None = None
    thread_id: str | None = None

    def __str__(self) -> str:
        rid = f" (record {self.record_id})" if self.record_id else ""
        return f"{self.source}:{self.location}{rid}: {self.message}"

    def to_dict(self) -> dict[str, JSONValue]:
        return {"error": self.message, **{k: v for k, v in asdict(self).items() if k != "message"}}


def stable_id(*parts: str, length: int = 16) -> str:
    """A short id that depends only on ``parts``, so it is the same on every run and machine."""
    digest = hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:length]
