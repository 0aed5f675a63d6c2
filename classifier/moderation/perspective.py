"""Perspective API's protocol, spoken by the hook: a site switches by changing one URL.

Perspective (Google's hosted ``commentanalyzer`` v1alpha1 service) is what Coral Talk,
WordPress plugins and countless in-house integrations call. This module maps its shapes
onto the hook's one chain (:meth:`~classifier.moderation.state.ServiceState.prepare` and
``predict``, the same model, batcher, limits and credentials as ``/v1/moderate``) and back:

- the request and response models of ``comments:analyze`` and ``comments:suggestscore``,
  field for field as Perspective documents them (unknown fields are ignored, as clients
  written for a later revision of the API may send some);
- :func:`analyze_plan`, which checks what was asked before the model runs (attributes,
  languages, score types: Perspective's 400s), and :func:`analyze_answer`, which builds
  ``attributeScores`` from a prediction, spans in UTF-16 code units as Perspective gives
  them (:func:`utf16_offsets`);
- :func:`discovery_document`: the discovery document Google's API clients build their
  ``comments().analyze()`` from, with this server as its ``rootUrl``;
- :class:`GoogleErrors`: an ASGI middleware that answers every error under
  ``/v1alpha1/`` in Google's shape, ``{"error": {"code", "message", "status"}}``, whether
  the guard, FastAPI's validation or a route raised it (401 becomes 403
  PERMISSION_DENIED, 413/422 400 INVALID_ARGUMENT, an overloaded 503 429
  RESOURCE_EXHAUSTED, a failure 503 UNAVAILABLE: never a 500, never a traceback).

The attribute -> label table is :data:`classifier.labels.PERSPECTIVE_ATTRIBUTES`.
docs/perspective.md is the user's guide.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from classifier.labels import PERSPECTIVE_ATTRIBUTES
from classifier.moderation.answers import spans_for_reason
from classifier.moderation.asgi import Receive, Send, send_json
from classifier.moderation.feedback import VERDICT_GOLD
from classifier.moderation.schemas import ArticleIn
from classifier.moderation.state import CommentInput
from classifier.schema import Scored, Stance, Text

logger = logging.getLogger(__name__)

#: Where Perspective's methods live (its clients append ``/comments:analyze``).
PREFIX: Final = "/v1alpha1/"
#: The one language the model reads (ISO 639-1, as Perspective names languages).
LANGUAGE: Final = "en"
#: The one score type served: a probability in [0, 1] (Perspective's default and, since
#: its other types were retired, its only one).
SCORE_TYPE: Final = "PROBABILITY"
#: What ``comments:suggestscore`` accepts besides attribute names: Coral's verdicts.
VERDICTS: Final = VERDICT_GOLD


# --------------------------------------------------------------------------- errors


class PerspectiveError(Exception):
    """An answer in Google's error shape: HTTP ``code``, canonical ``status``, ``message``
    and, for Perspective's typed errors, ``details`` (e.g. LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE)."""

    def __init__(
        self,
        code: int,
        status: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def invalid(message: str, error_type: str | None = None, **extra: Any) -> PerspectiveError:
    """400 INVALID_ARGUMENT; with ``error_type``, Perspective's typed error detail."""
    details = None
    if error_type is not None:
        details = [
            {
                "@type": "type.googleapis.com/google.commentanalyzer.v1alpha1.Error",
                "errorType": error_type,
                **extra,
            }
        ]
    return PerspectiveError(400, "INVALID_ARGUMENT", message, details)


# --------------------------------------------------------------------------- shapes


class _In(BaseModel):
    """Perspective's request objects: unknown fields are ignored (a client written for a
    later revision may send some), every text is valid Unicode (:data:`Text`)."""

    model_config = ConfigDict(extra="ignore")


class TextEntry(_In):
    text: Text | None = None
    type: Literal["PLAIN_TEXT", "HTML"] | None = Field(
        default=None, description="Only PLAIN_TEXT is scored (as Perspective)."
    )


class ArticleAndParentComment(_In):
    article: TextEntry | None = None
    parentComment: TextEntry | None = None


class Context(_In):
    """What the comment is read against: ``articleAndParentComment`` names both; else
    ``entries[0]`` is the article and ``entries[1]`` the parent comment (an entry whose text
    is a JSON object, such as Coral's comment metadata, is not text to read)."""

    entries: list[TextEntry] | None = None
    articleAndParentComment: ArticleAndParentComment | None = None


class AttributeParameters(_In):
    scoreType: str | None = Field(default=None, description="PROBABILITY (the default) only.")
    scoreThreshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Leave the attribute (and spans) out when its score is below this.",
    )


class AnalyzeCommentRequest(_In):
    comment: TextEntry
    context: Context | None = None
    requestedAttributes: dict[str, AttributeParameters | None] | None = None
    spanAnnotations: bool | None = None
    languages: list[Text] | None = None
    doNotStore: bool | None = Field(
        default=None, description="Accepted; analyze stores nothing either way."
    )
    clientToken: Text | None = None
    sessionId: Text | None = None
    communityId: Text | None = None


class Score(BaseModel):
    value: float
    type: str = SCORE_TYPE


class SpanScore(BaseModel):
    begin: int = Field(description="UTF-16 code unit offset of the span's start.")
    end: int = Field(description="UTF-16 code unit offset just past its end.")
    score: Score


class AttributeScores(BaseModel):
    summaryScore: Score
    spanScores: list[SpanScore] | None = None


class Extension(BaseModel):
    """threadguard's own findings, beside Perspective's fields."""

    modelVersion: str
    requestId: str
    #: not Perspective's: the stance toward the context (clients that do not know the
    #: ``threadguard`` key ignore it)
    stance: Stance | None = None


class AnalyzeCommentResponse(BaseModel):
    attributeScores: dict[str, AttributeScores]
    languages: list[str]
    detectedLanguages: list[str]
    clientToken: str | None = None
    threadguard: Extension | None = None


class SuggestedScores(_In):
    summaryScore: Score | None = None
    spanScores: list[SpanScore] | None = None


class SuggestCommentScoreRequest(_In):
    comment: TextEntry
    context: Context | None = None
    attributeScores: dict[str, SuggestedScores]
    languages: list[Text] | None = None
    communityId: Text | None = None
    clientToken: Text | None = None
    sessionId: Text | None = None


class SuggestCommentScoreResponse(BaseModel):
    detectedLanguages: list[str]
    requestedLanguages: list[str] | None = None
    clientToken: str | None = None


# --------------------------------------------------------------------------- analyze


@dataclass(frozen=True)
class Asked:
    """One requested attribute: the label behind it and what the client asked of it."""

    attribute: str
    kind: Literal["toxicity", "constructive"]
    label: str
    threshold: float | None


def _language_ok(code: str) -> bool:
    """Whether a language tag (``en``, ``EN``, ``en-US``, ``en_GB``) is English."""
    return re.split(r"[-_]", code.strip(), maxsplit=1)[0].lower() == LANGUAGE


def check_languages(languages: Sequence[str] | None, attributes: Sequence[str]) -> list[str]:
    """The request's languages as answered (``["en"]`` when none were given: the model
    reads English and does not detect languages); a language other than English is
    Perspective's LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE, naming the first attribute."""
    if not languages:
        return [LANGUAGE]
    unsupported = [code for code in languages if not _language_ok(code)]
    if unsupported:
        attribute = attributes[0] if attributes else "TOXICITY"
        raise invalid(
            f"Attribute {attribute} does not support request languages: "
            f"{', '.join(unsupported)} (this model reads English only)",
            "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
            languageNotSupportedByAttributeError={
                "requestedLanguages": list(languages),
                "attribute": attribute,
            },
        )
    return list(languages)


def analyze_plan(body: AnalyzeCommentRequest) -> list[Asked]:
    """What ``body`` asks for, checked before the model runs: 400 INVALID_ARGUMENT for no
    attributes, an unknown one, a score type other than PROBABILITY, an empty or HTML
    comment; LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE for a language the model does not read."""
    requested = body.requestedAttributes or {}
    if not requested:
        raise invalid("requestedAttributes must name at least one attribute")
    unknown = [name for name in requested if name not in PERSPECTIVE_ATTRIBUTES]
    if unknown:
        raise invalid(
            f"unknown attribute(s) {', '.join(unknown)}; this service serves "
            f"{', '.join(PERSPECTIVE_ATTRIBUTES)}"
        )
    if body.comment.type == "HTML":
        raise invalid("comment.type HTML is not supported: send PLAIN_TEXT (as Perspective)")
    if not (body.comment.text or "").strip():
        raise invalid("comment.text must be non-empty")
    check_languages(body.languages, list(requested))
    asked = []
    for name, params in requested.items():
        params = params or AttributeParameters()
        if params.scoreType not in (None, "", SCORE_TYPE):
            raise invalid(
                f"{name}: scoreType {params.scoreType} is not supported; use {SCORE_TYPE}"
            )
        kind, label = PERSPECTIVE_ATTRIBUTES[name]
        asked.append(Asked(name, kind, label, params.scoreThreshold))
    return asked


def _context_texts(context: Context | None) -> tuple[str | None, str | None]:
    """(article text, parent comment text) from Perspective's context (see :class:`Context`)."""
    if context is None:
        return None, None
    both = context.articleAndParentComment
    if both is not None and (both.article or both.parentComment):
        return (
            both.article.text if both.article else None,
            both.parentComment.text if both.parentComment else None,
        )
    texts = []
    for entry in context.entries or []:
        text = (entry.text or "").strip()
        if text.startswith("{"):
            try:
                if isinstance(json.loads(text), dict):
                    continue  # metadata (Coral's comment ids), not text to read
            except ValueError:
                pass
        texts.append(entry.text)
    return (texts[0] if texts else None), (texts[1] if len(texts) > 1 else None)


def comment_input(body: AnalyzeCommentRequest | SuggestCommentScoreRequest) -> CommentInput:
    """The chain's input for a Perspective request: the comment read against its context,
    with the fields whose length is limited named as the client sent them."""
    text = body.comment.text or ""
    article, parent = _context_texts(body.context)
    return CommentInput(
        text,
        parent_text=parent,
        article=ArticleIn(text=article) if article else None,
        checked=(
            ("comment.text", text),
            ("context article", article),
            ("context parent comment", parent),
        ),
    )


def utf16_offsets(text: str) -> Callable[[int], int]:
    """A function from a Python string index of ``text`` (code points) to the UTF-16 code
    unit offset Perspective's ``begin``/``end`` use: the same below U+10000, one more for
    each astral character (an emoji) before it."""
    if all(ord(c) < 0x10000 for c in text):
        return lambda i: i
    units = [0]
    for c in text:
        units.append(units[-1] + (2 if ord(c) >= 0x10000 else 1))
    return lambda i: units[max(0, min(i, len(text)))]


def missing_labels(asked: Sequence[Asked], prediction: Mapping[str, Any]) -> list[str]:
    """The requested attributes whose label the loaded model does not give."""
    return [a.attribute for a in asked if a.label not in (prediction.get(a.kind) or {})]


def analyze_answer(
    asked: Sequence[Asked],
    prediction: Mapping[str, Any],
    text: str,
    *,
    spans: bool,
) -> dict[str, AttributeScores]:
    """``attributeScores`` for ``asked`` from a prediction of ``text``.

    Each attribute's summary score is its label's probability. Its ``spanScores``: with
    ``spanAnnotations``, the model's toxic spans behind the attribute
    (:func:`~classifier.moderation.answers.spans_for_reason`: every span for TOXICITY and
    SEVERE_TOXICITY, those of the type and of no type for the others), each scored by its
    highest toxicity probability; otherwise, and for attributes no span head covers (the
    experimental ones) or a model without spans, one span over the whole text with the
    summary score, as Perspective answers without span annotations. An attribute (or span)
    below its ``scoreThreshold`` is left out. Raises 400 naming any attribute whose label
    this model does not provide (never a stand-in score).
    """
    missing = missing_labels(asked, prediction)
    if missing:
        labels = ", ".join(f"{a} ({PERSPECTIVE_ATTRIBUTES[a][1]})" for a in missing)
        raise invalid(
            f"this model does not provide {labels}: attribute(s) {', '.join(missing)} "
            "cannot be scored by it"
        )
    to_utf16 = utf16_offsets(text)
    whole = to_utf16(len(text))
    model_spans = Scored.of(text, prediction, "none").spans
    out: dict[str, AttributeScores] = {}
    for a in asked:
        value = float(prediction[a.kind][a.label])
        if a.threshold is not None and value < a.threshold:
            continue
        chosen = (
            spans_for_reason(a.label, model_spans)
            if spans and model_spans is not None and a.kind == "toxicity"
            else None
        )
        if chosen is None:
            span_scores = [SpanScore(begin=0, end=whole, score=Score(value=value))]
        else:
            span_scores = [
                SpanScore(
                    begin=to_utf16(int(s["start"])),
                    end=to_utf16(int(s["end"])),
                    score=Score(value=float(s["score"])),
                )
                for s in chosen
                if a.threshold is None or float(s["score"]) >= a.threshold
            ]
        out[a.attribute] = AttributeScores(summaryScore=Score(value=value), spanScores=span_scores)
    return out


# --------------------------------------------------------------------------- suggestscore


def suggested_labels(body: SuggestCommentScoreRequest) -> dict[str, float]:
    """The moderator's suggestion as ``{name: value}``: Coral's ``DELETED``/``APPROVED``
    (value 1 for the one it sends) or Perspective attributes with their suggested
    probability; 400 for anything else or a value outside [0, 1]."""
    if not body.attributeScores:
        raise invalid("attributeScores must name at least one attribute")
    if not (body.comment.text or "").strip():
        raise invalid("comment.text must be non-empty")
    out = {}
    for name, suggested in body.attributeScores.items():
        if name not in PERSPECTIVE_ATTRIBUTES and name not in VERDICTS:
            raise invalid(
                f"unknown attribute {name}; suggest one of "
                f"{', '.join([*PERSPECTIVE_ATTRIBUTES, *VERDICTS])}"
            )
        score = suggested.summaryScore
        value = 1.0 if score is None else score.value
        if not 0.0 <= value <= 1.0:
            raise invalid(f"{name}: summaryScore.value must be in [0, 1], got {value}")
        out[name] = value
    return out


def coral_comment_id(context: Context | None) -> str | None:
    """The comment id in Coral's suggestscore metadata entry (``Coral_comment_id``)."""
    for entry in (context.entries or []) if context else []:
        try:
            meta = json.loads(entry.text or "")
        except ValueError:
            continue
        if isinstance(meta, dict) and meta.get("Coral_comment_id") is not None:
            return str(meta["Coral_comment_id"])
    return None


# --------------------------------------------------------------------------- discovery


def _schema(name: str, properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"id": name, "type": "object", "description": description, "properties": properties}


_STR: Final = {"type": "string"}
_STRS: Final = {"type": "array", "items": {"type": "string"}}


def discovery_document(root_url: str, version: str) -> dict[str, Any]:
    """The ``commentanalyzer`` v1alpha1 discovery document with ``root_url`` (this server,
    ending in ``/``) as its root, so that ``googleapiclient.discovery.build("commentanalyzer",
    "v1alpha1", discoveryServiceUrl=..., static_discovery=False)`` calls this server."""
    ref = lambda name: {"$ref": name}  # noqa: E731
    schemas = {
        "TextEntry": _schema("TextEntry", {"text": _STR, "type": _STR}),
        "ArticleAndParentComment": _schema(
            "ArticleAndParentComment",
            {"article": ref("TextEntry"), "parentComment": ref("TextEntry")},
        ),
        "Context": _schema(
            "Context",
            {
                "entries": {"type": "array", "items": ref("TextEntry")},
                "articleAndParentComment": ref("ArticleAndParentComment"),
            },
        ),
        "AttributeParameters": _schema(
            "AttributeParameters",
            {"scoreType": _STR, "scoreThreshold": {"type": "number", "format": "float"}},
        ),
        "Score": _schema("Score", {"value": {"type": "number", "format": "float"}, "type": _STR}),
        "SpanScore": _schema(
            "SpanScore",
            {
                "begin": {"type": "integer", "format": "int32"},
                "end": {"type": "integer", "format": "int32"},
                "score": ref("Score"),
            },
            "A score for text[begin:end], offsets in UTF-16 code units, end exclusive.",
        ),
        "AttributeScores": _schema(
            "AttributeScores",
            {
                "summaryScore": ref("Score"),
                "spanScores": {"type": "array", "items": ref("SpanScore")},
            },
        ),
        "AnalyzeCommentRequest": _schema(
            "AnalyzeCommentRequest",
            {
                "comment": ref("TextEntry"),
                "context": ref("Context"),
                "requestedAttributes": {
                    "type": "object",
                    "additionalProperties": ref("AttributeParameters"),
                },
                "spanAnnotations": {"type": "boolean"},
                "languages": _STRS,
                "doNotStore": {"type": "boolean"},
                "clientToken": _STR,
                "sessionId": _STR,
                "communityId": _STR,
            },
        ),
        "AnalyzeCommentResponse": _schema(
            "AnalyzeCommentResponse",
            {
                "attributeScores": {
                    "type": "object",
                    "additionalProperties": ref("AttributeScores"),
                },
                "languages": _STRS,
                "detectedLanguages": _STRS,
                "clientToken": _STR,
            },
        ),
        "SuggestCommentScoreRequest": _schema(
            "SuggestCommentScoreRequest",
            {
                "comment": ref("TextEntry"),
                "context": ref("Context"),
                "attributeScores": {
                    "type": "object",
                    "additionalProperties": ref("AttributeScores"),
                },
                "languages": _STRS,
                "communityId": _STR,
                "clientToken": _STR,
                "sessionId": _STR,
            },
        ),
        "SuggestCommentScoreResponse": _schema(
            "SuggestCommentScoreResponse",
            {"detectedLanguages": _STRS, "requestedLanguages": _STRS, "clientToken": _STR},
        ),
    }

    def method(name: str, request: str, response: str, description: str) -> dict[str, Any]:
        return {
            "id": f"commentanalyzer.comments.{name}",
            "path": f"v1alpha1/comments:{name}",
            "flatPath": f"v1alpha1/comments:{name}",
            "httpMethod": "POST",
            "parameters": {},
            "parameterOrder": [],
            "request": ref(request),
            "response": ref(response),
            "description": description,
        }

    return {
        "kind": "discovery#restDescription",
        "discoveryVersion": "v1",
        "id": "commentanalyzer:v1alpha1",
        "name": "commentanalyzer",
        "version": "v1alpha1",
        "revision": version,
        "title": "threadguard (Perspective Comment Analyzer API)",
        "description": "threadguard's self-hosted drop-in for Perspective's Comment Analyzer API.",
        "protocol": "rest",
        "rootUrl": root_url,
        "servicePath": "",
        "basePath": "",
        "baseUrl": root_url,
        "batchPath": "batch",
        "documentationLink": "https://github.com/threadguard/threadguard/blob/main/docs/perspective.md",
        "parameters": {
            "key": {
                "type": "string",
                "location": "query",
                "description": "A threadguard bearer token (THREADGUARD_TOKEN).",
            },
            "alt": {
                "type": "string",
                "location": "query",
                "default": "json",
                "enum": ["json"],
                "description": "Data format for the response.",
            },
            "prettyPrint": {"type": "boolean", "location": "query", "default": "true"},
            "fields": {"type": "string", "location": "query"},
            "$.xgafv": {"type": "string", "location": "query", "enum": ["1", "2"]},
        },
        "schemas": schemas,
        "resources": {
            "comments": {
                "methods": {
                    "analyze": method(
                        "analyze",
                        "AnalyzeCommentRequest",
                        "AnalyzeCommentResponse",
                        "Scores the comment for the requested attributes.",
                    ),
                    "suggestscore": method(
                        "suggestscore",
                        "SuggestCommentScoreRequest",
                        "SuggestCommentScoreResponse",
                        "Stores a moderator's decision on a comment (threadguard calibrate "
                        "--feedback reads them).",
                    ),
                }
            }
        },
    }


# --------------------------------------------------------------------------- errors, in Google's shape


#: Our status -> Google's (code, status). Authentication is 403 PERMISSION_DENIED, as
#: Perspective answers a bad key; the hook's 413/422 are 400 INVALID_ARGUMENT; every
#: failure is 503 UNAVAILABLE (retryable), never a 500.
_GOOGLE: Final[dict[int, tuple[int, str]]] = {
    400: (400, "INVALID_ARGUMENT"),
    401: (403, "PERMISSION_DENIED"),
    403: (403, "PERMISSION_DENIED"),
    404: (404, "NOT_FOUND"),
    405: (404, "NOT_FOUND"),
    408: (408, "DEADLINE_EXCEEDED"),
    413: (400, "INVALID_ARGUMENT"),
    422: (400, "INVALID_ARGUMENT"),
    429: (429, "RESOURCE_EXHAUSTED"),
}
#: Headers an error keeps when it is rewritten (the rest are the new body's).
#: Google answers JSON with its charset named.
_GOOGLE_JSON = b"application/json; charset=UTF-8"
_KEPT: Final = frozenset({b"retry-after", b"connection", b"x-request-id"})


def google_error(status: int, payload: Any) -> tuple[int, dict[str, Any]]:
    """Google's error ``(code, body)`` for one of our error answers (``status`` and its
    parsed JSON body, ``{"detail": ...}``); a body already in Google's shape is kept."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return status, payload
    detail = payload.get("detail") if isinstance(payload, dict) else None
    message = detail if isinstance(detail, str) else "the request failed"
    if status == 503 and message.startswith("overloaded"):
        code, name = 429, "RESOURCE_EXHAUSTED"
    elif status >= 500:
        code, name = 503, "UNAVAILABLE"
    else:
        code, name = _GOOGLE.get(status, (400, "INVALID_ARGUMENT"))
    if status == 401:
        message = f"permission denied: {message} (send ?key=<token> or a bearer token)"
    return code, {"error": {"code": code, "message": message, "status": name}}


class GoogleErrors:
    """ASGI middleware: every error answered under ``/v1alpha1/`` in Google's JSON shape.

    It sits outside the guard, so the guard's 401/408/413/422/503, FastAPI's validation
    errors and the routes' own errors all pass through one translation
    (:func:`google_error`); an exception that escapes a route is logged and answered 503
    UNAVAILABLE with the request id, never Starlette's 500 page.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] | None = None
        chunks: list[bytes] = []
        started = False

        async def rewriting(message: dict[str, Any]) -> None:
            nonlocal held, started
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    started = True
                    await send(message)
                else:
                    held = message
                return
            if message["type"] == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._send_google(send, held, b"".join(chunks))
                    started = True
                return
            await send(message)

        try:
            await self.app(scope, receive, rewriting)
        except Exception:
            request_id = scope.get("state", {}).get("request_id", "")
            logger.exception("request %s: %s failed", request_id, scope["path"])
            if not started:
                body = PerspectiveError(
                    503, "UNAVAILABLE", f"the request failed (request {request_id}); retry later"
                ).body()
                await send_json(send, 503, body, [(b"retry-after", b"1")], _GOOGLE_JSON)

    @staticmethod
    async def _send_google(send: Send, start: dict[str, Any], body: bytes) -> None:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = {"detail": body.decode("utf-8", "replace")[:200]}
        code, google = google_error(start["status"], payload)
        kept = [(k, v) for k, v in start.get("headers", []) if k.lower() in _KEPT]
        await send_json(send, code, google, kept, _GOOGLE_JSON)
