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

import datetime as _dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
)

JSONValue = Any

# --------------------------------------------------------------------------- text validation
#
# The one place that says what a usable text field is. The readers (every field of every
# record), the moderation service's request models and the error rows all use it, so a
# value that passes here can be tokenized and written as UTF-8 JSON, CSV or Parquet.

#: Deepest nesting of objects and lists accepted in an ``extra`` JSON object.
MAX_JSON_DEPTH = 32

_SURROGATE_ANY = re.compile("[\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """What makes ``value`` unusable as text (``None`` if nothing).

    A lone surrogate (U+D800 to U+DFFF) is not a character: it cannot be encoded as
    UTF-8, so the tokenizer, the JSON writer and Parquet all fail on it. Readers decode
    bytes that are not UTF-8 to U+DC80..U+DCFF (``surrogateescape``); JSON can carry
    any surrogate as a ``\\udXXX`` escape. NUL and other control characters are valid
    text and pass.
    """
    m = _SURROGATE_ANY.search(value)
    if m is None:
        return None
    code = ord(m.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"has a byte that is not UTF-8 (or a lone surrogate) at character {m.start()}"
    return f"has a lone surrogate U+{code:04X} (not valid Unicode) at character {m.start()}"


def check_text(value: str) -> str:
    """``value`` unchanged if it is usable text, else ``ValueError`` saying why."""
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def safe_text(value: str) -> str:
    """``value`` with any lone surrogate written as a ``\\udXXX`` escape: for messages and
    error rows, which must always be writable whatever the input held."""
    if _SURROGATE_ANY.search(value) is None:
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _id_value(value: Any) -> Any:
    # Ids come as strings or integers (WordPress, Reddit dumps); bools and floats are not ids.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _stamp_value(value: Any) -> Any:
    # Timestamps come as strings, epoch numbers or (Parquet) datetimes.
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value == value:
        return str(value)
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    return value


def check_json_object(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` if it is a JSON object of usable text, at most :data:`MAX_JSON_DEPTH` deep.

    Walked without recursion, so a hostile depth cannot exhaust the stack here.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(node, dict):
            for key, child in node.items():
                if not isinstance(key, str):
                    raise ValueError(f"has a key that is not a string: {type(key).__name__}")
                check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
        elif isinstance(node, str):
            check_text(node)
        elif node is not None and not isinstance(node, (bool, int, float)):
            raise ValueError(f"holds a {type(node).__name__}, which is not a JSON value")
    return value


#: A text field: a ``str`` (never a number, list or object turned into one), valid Unicode.
Text = Annotated[str, Strict(), AfterValidator(check_text)]
#: An id: a string, or an integer taken as its decimal string.
Id = Annotated[str, BeforeValidator(_id_value), Strict(), AfterValidator(check_text)]
#: A timestamp: a string, an epoch number or a date/time, kept as a string.
Stamp = Annotated[str, BeforeValidator(_stamp_value), Strict(), AfterValidator(check_text)]
#: A JSON object (``extra``): string keys, JSON values, valid text, bounded depth.
JSONObject = Annotated[dict[str, Any], Strict(), AfterValidator(check_json_object)]


def describe(error: ValidationError, prefix: str = "") -> str:
    """A :class:`ValidationError` as one line: ``field 'a.b': message; ...`` (no input echoed)."""
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in (prefix, *item["loc"]) if p != "")
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"field {safe_text(loc)!r}: {message}" if loc else message)
    return "; ".join(parts)


def json_problem(error: json.JSONDecodeError) -> str:
    """What is wrong in a :class:`json.JSONDecodeError`, without where: json ends some of its
    messages in "at" ("Unterminated string starting at"), and each caller names the place."""
    return error.msg.removesuffix(" at")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ArticleRecord(_Record):
    """An article as the thread form gives it: every field typed, unknown keys refused."""

    id: Id | None = None
    url: Text | None = None
    title: Text = ""
    body: Text = ""
    published: Stamp | None = None
    author: Text | None = None


class CommentRecord(_Record):
    """A comment as the thread form gives it (``id`` may be left to the reader)."""

    id: Id | None = None
    text: Text
    parent_id: Id | None = None
    author: Text | None = None
    timestamp: Stamp | None = None
    extra: JSONObject | None = None


class ThreadRecord(_Record):
    """A thread JSONL line's own fields; its comments are validated one by one."""

    id: Id
    source: Text | None = None
    article: ArticleRecord
    comments: list[Any]
    extra: JSONObject | None = None


#: Validators for one flat-form cell of each kind (CSV, flat JSONL, Parquet).
TEXT_CELL: TypeAdapter[str | None] = TypeAdapter(Text | None)
ID_CELL: TypeAdapter[str | None] = TypeAdapter(Id | None)
STAMP_CELL: TypeAdapter[str | None] = TypeAdapter(Stamp | None)


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
            record = ThreadRecord.model_validate(data)
        except ValidationError as exc:
            raise ValueError(describe(exc)) from None
        art = record.article
        return cls(
            id=record.id,
            source=record.source or "",
            article=Article(
                id=art.id or record.id,
                url=art.url,
                title=art.title,
                body=art.body,
                published=art.published,
                author=art.author,
            ),
            comments=[],  # comments are validated one by one by the reader
            extra=record.extra or {},
        )


@dataclass
class ErrorRecord:
    """An input record that could not be read, with where it was and what was wrong."""

    source: str
    location: str
    message: str
    record_id: str | None = None
    thread_id: str | None = None

    def __post_init__(self) -> None:
        # An error row must always be writable: ids and messages may quote hostile input.
        for name in ("source", "location", "message", "record_id", "thread_id"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, safe_text(value if isinstance(value, str) else str(value)))

    def __str__(self) -> str:
        rid = f" (record {self.record_id})" if self.record_id else ""
        return f"{self.source}:{self.location}{rid}: {self.message}"

    def to_dict(self) -> dict[str, JSONValue]:
        return {"error": self.message, **{k: v for k, v in asdict(self).items() if k != "message"}}


def stable_id(*parts: str, length: int = 16) -> str:
    """A short id that depends only on ``parts``, so it is the same on every run and machine."""
    digest = hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:length]


# --------------------------------------------------------------------------- results
#
# What scoring one comment gives, defined once: the rows `threadguard score` writes (and
# the Ray engine ships), the Python API's results and the hook's answers are all built
# from these models, so a field is named, typed and documented in one place. The JSONL
# row's JSON schema is CommentResult's (published in docs/reference.md).

#: What a stance is toward: the comment replied to, the article, or nothing (a top-level
#: comment under an article with neither title nor text).
StanceTarget = Literal["parent", "article", "none"]
#: A moderation decision, most lenient first.
DecisionName = Literal["feature", "approve", "review", "reject"]


class _Result(BaseModel):
    # Unknown keys are refused: a row or answer with a field no model names is a bug.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Span(_Result):
    """A toxic span of a comment: ``text[start:end]``, its type and its score."""

    start: int = Field(description="Character offset of the span's first character.")
    end: int = Field(description="Character offset just past the span's last character.")
    label: str = Field(
        description="Its type: insult, obscene, identity_attack, threat, or toxicity "
        "(toxic, no type decided)."
    )
    score: float = Field(description="The span's highest toxicity probability.")

    def __getitem__(self, key: str) -> Any:
        """A field by name: a span reads as the mapping it was before it had a type
        (``text[span["start"]:span["end"]]``, in code written against the Python API)."""
        return getattr(self, key)


class Reason(_Result):
    """A policy rule that triggered: the label, its score, the threshold it reached and the
    action (``review``/``reject`` for a toxicity rule, ``feature`` for the feature rule)."""

    label: str
    score: float
    threshold: float
    action: Literal["review", "reject", "feature"]


class Stance(_Result):
    """The most likely stance, every stance class's probability, and what it is toward."""

    label: str
    scores: dict[str, float]
    target: StanceTarget = Field(
        description="What the stance is toward: the parent comment, the article, or nothing."
    )


class ModelInfo(_Result):
    """The model that scored a row: its name, content version and backend."""

    name: str
    version: str
    backend: str = "torch"


class _CommentFields(_Result):
    """The comment, as read."""

    thread_id: str
    comment_id: str
    parent_id: str | None = Field(description="The comment it replies to; null: the article.")
    author: str | None
    text: str


class Scored(_Result):
    """A comment's text and what the model found in it, each score keyed by label name; the
    optional heads' fields are set only when the model gives them."""

    text: str
    stance: Stance
    toxicity: dict[str, float] = Field(description="Each toxicity label's probability.")
    constructive: dict[str, float] | None = Field(
        default=None,
        description="Constructiveness and its characteristics by label, when the model gives "
        "them (else absent).",
    )
    spans: list[Span] | None = Field(
        default=None,
        description="The words that drove the toxicity (character offsets into text), when "
        "the model gives them (else absent).",
    )

    @classmethod
    def of(cls, text: str, prediction: Mapping[str, Any], target: str) -> Scored:
        """The typed form of a model's prediction for ``text`` (``stance``, ``toxicity`` and
        the optional ``constructive`` and ``spans``), its stance toward ``target``."""
        return cls.model_validate(
            {**prediction, "text": text, "stance": {**prediction["stance"], "target": target}}
        )

    def fields(self) -> dict[str, Any]:
        """Its fields as they are (models, not dicts), the absent ones left out: to build a
        larger result from this one without validating them again."""
        return {n: getattr(self, n) for n in Scored.model_fields if getattr(self, n) is not None}

    def absent(self) -> set[str]:
        """The optional fields (default ``None``) left unset: an output leaves them out, so
        a model without a head, or a run without a policy, writes what it always did."""
        fields = type(self).model_fields
        return {n for n, f in fields.items() if not f.is_required() and getattr(self, n) is None}


class CommentResult(Scored, _CommentFields):
    """One output row of ``threadguard score``: the comment, its scores, the model and, with a
    moderation policy, the decision and its reasons (absent without one)."""

    model: ModelInfo
    decision: DecisionName | None = Field(
        default=None, description="The moderation decision (only with a policy)."
    )
    reasons: list[Reason] | None = Field(
        default=None, description="The rules that triggered, strictest first (only with a policy)."
    )

    def row(self) -> dict[str, Any]:
        """The row as plain JSON values, its keys in the published order, the optional
        fields present only when set (what the writers write)."""
        return self.model_dump(exclude=self.absent())
