"""The moderation service: a FastAPI app that scores comments and applies the policy.

Build it with :func:`create_app` (``threadguard serve`` runs it on uvicorn). The
model is loaded once, at start-up (the app's lifespan); a warm-up inference
then runs in the background and ``GET /readyz`` answers 200 once it is done.

Endpoints (details in ``docs/moderation.md`` and at ``/openapi.json``):

- ``POST /v1/moderate``: one comment with its context -> decision (``feature``,
  ``approve``, ``review``, ``reject``), reasons, scores, stance, model version,
  latency;
- ``POST /v1/score``: a bounded batch of comments -> scores and stance only, in
  order or (``sort=constructive``) most constructive first;
- ``POST /v1/coral``: Coral Talk's external moderation phase (a featured comment
  is approved with Coral's ``FEATURED`` tag);
- ``POST /v1/wordpress``: the answer a ``pre_comment_approved`` filter returns
  (a featured comment is approved, with ``featured: true``);
- ``GET /v1/policy``: the policy in force;
- ``GET /healthz`` (alive), ``GET /readyz`` (model loaded and warmed up).

In front of every ``/v1/`` request, a small ASGI guard checks, in this order:
credentials that need no body (a bearer token; none at all is 401 at once,
before a byte of the body is read); the body, within its size limit (413) and
a read deadline (408), with requests still unverified (signed ones) bounded
apart from the model's slots; a signature over the body (an HMAC-SHA256 of the
raw body, or on ``/v1/coral`` Coral's ``X-Coral-Signature``; 401); that the
body is JSON it can read (UTF-8, not absurdly nested; 422); and only then
takes an in-flight slot, or answers 503 at once (with ``Retry-After``). So a
client without credentials can hold no slot and no body buffer, and a slow
body cannot hold anything longer than the deadline. Every text field of every
request is validated by :data:`classifier.schema.Text` (a string, valid
Unicode): a lone surrogate is a 422, never a 500. Comment text is never logged
at INFO level or above: the log line of a request carries its id, path,
status, decision and latency.

With a model that has the constructiveness and span heads, every scoring answer
also carries the comment's ``constructive`` scores and toxic ``spans`` (character
offsets into the text as scored, and the words), and each toxicity reason the
spans behind it (:func:`spans_for_reason`). With a model without them those keys
are absent, not null: such a model's answers are what they always were.

Concurrent requests are micro-batched (:class:`MicroBatcher`): the first
waiting request starts a batch, requests already in the server join it for at
most a few milliseconds, and the model runs in a worker thread so the event
loop keeps accepting requests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import html
import json
import logging
import os
import re
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field

from classifier import __version__
from classifier.labels import SPAN_LABELS
from classifier.moderation.policy import Decision, Policy
from classifier.runtime import ONNX_MISSING, load_predictor, onnx_available, resolve_backend
from classifier.schema import Id, Text
from classifier.targets import CommentItem, comment_item, stance_target, trim_words

if TYPE_CHECKING:
    from classifier.runtime import Prediction

logger = logging.getLogger(__name__)

#: Environment variables the service reads its secrets from.
TOKEN_ENV = "THREADGUARD_TOKEN"
HMAC_SECRET_ENV = "THREADGUARD_HMAC_SECRET"
CORAL_SECRET_ENV = "THREADGUARD_CORAL_SECRET"
#: Environment variable carrying the (secret-free) settings to each uvicorn worker.
SETTINGS_ENV = "THREADGUARD_SERVICE_SETTINGS"

SIGNATURE_HEADER = "x-threadguard-signature"
CORAL_SIGNATURE_HEADER = "x-coral-signature"

WARMUP_ITEMS: list[CommentItem] = [
    comment_item(
        "Thanks for the report, but where is the evidence for the figures?",
        article_title="Council approves new budget",
        article_text="The city council approved the budget on Tuesday.",
    ),
    comment_item("I agree with you.", parent_text="This is the best article on the topic."),
]


class ServiceConfigError(ValueError):
    """The service settings cannot work (e.g. no credentials and no ``no_auth``)."""


class PredictorLike(Protocol):
    """What the service needs of a predictor: :meth:`classifier.runtime.BatchPredictor.predict`."""

    def predict(self, items: Any) -> list[Prediction]: ...


# --------------------------------------------------------------------------- settings


@dataclass
class ServiceSettings:
    """Everything that configures the service (``threadguard serve`` options).

    Secrets (``token``, ``hmac_secret``, ``coral_secret``) are never written
    by :meth:`to_env` into the settings variable; they travel in their own
    environment variables. ``hmac_secret`` and ``coral_secret`` may list
    several secrets separated by commas (for rotation).
    """

    model: str | None = None
    policy: str | None = None
    token: str | None = None
    hmac_secret: str | None = None
    coral_secret: str | None = None
    no_auth: bool = False
    batching: bool = True
    batch_size: int = 32
    batch_wait_ms: float = 3.0
    max_in_flight: int = 64
    max_body_bytes: int = 65_536
    max_batch_body_bytes: int = 1_048_576
    max_comment_chars: int = 20_000
    max_batch: int = 64
    request_timeout_s: float = 10.0
    threads: int | None = None
    batch_tokens: int | None = 512
    backend: str = "auto"
    cache_size: int = 10_000
    cache_bytes: int = 16 * 2**20
    body_timeout_s: float = 5.0
    max_unverified: int = 256
    docs: bool | None = None
    model_version: str | None = None

    SECRETS = ("token", "hmac_secret", "coral_secret")

    def validate(self) -> None:
        """Raise :class:`ServiceConfigError` for settings the service cannot run with."""
        if not self.no_auth and not (self.token or self.hmac_secret or self.coral_secret):
            raise ServiceConfigError(
                "refusing to start without credentials: set a bearer token "
                f"({TOKEN_ENV} or --token-file), an HMAC shared secret ({HMAC_SECRET_ENV}) "
                f"or a Coral signing secret ({CORAL_SECRET_ENV}); or pass --no-auth, "
                "for local use only"
            )
        for name in (
            "batch_size",
            "max_in_flight",
            "max_body_bytes",
            "max_batch_body_bytes",
            "max_comment_chars",
            "max_batch",
            "max_unverified",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ServiceConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.batch_wait_ms < 0 or self.request_timeout_s <= 0 or self.body_timeout_s <= 0:
            raise ServiceConfigError(
                "batch_wait_ms must be >= 0, request_timeout_s and body_timeout_s > 0"
            )
        if self.batch_tokens is not None and self.batch_tokens < 1:
            raise ServiceConfigError(f"batch_tokens must be positive, got {self.batch_tokens}")
        if self.threads is not None and self.threads < 1:
            raise ServiceConfigError(f"threads must be positive, got {self.threads}")
        try:
            resolve_backend(self.backend)
        except ValueError as exc:
            raise ServiceConfigError(str(exc)) from None
        if self.backend.startswith("onnx") and not onnx_available():
            raise ServiceConfigError(
                f"backend {self.backend!r}: {ONNX_MISSING}; or use --backend torch"
            )
        if self.cache_size < 0 or self.cache_bytes < 0:
            raise ServiceConfigError(
                f"cache_size and cache_bytes must be >= 0, got {self.cache_size}, {self.cache_bytes}"
            )

    @property
    def docs_enabled(self) -> bool:
        """Whether ``/docs``, ``/redoc`` and ``/openapi.json`` are served: ``docs`` if set,
        else only without authentication (local use): they are open to anyone."""
        return self.no_auth if self.docs is None else self.docs

    def to_env(self) -> dict[str, str]:
        """Environment variables from which :meth:`from_env` rebuilds these settings."""
        public = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in self.SECRETS
        }
        env = {SETTINGS_ENV: json.dumps(public)}
        for name, var in zip(
            self.SECRETS, (TOKEN_ENV, HMAC_SECRET_ENV, CORAL_SECRET_ENV), strict=True
        ):
            value = getattr(self, name)
            if value:
                env[var] = value
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        """Settings from ``THREADGUARD_SERVICE_SETTINGS`` (JSON) and the secret variables."""
        environ = os.environ if environ is None else environ
        data = json.loads(environ.get(SETTINGS_ENV) or "{}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ServiceConfigError(f"unknown setting(s) {unknown} in {SETTINGS_ENV}")
        data = {k: v for k, v in data.items() if k not in cls.SECRETS}
        return cls(
            **data,
            token=environ.get(TOKEN_ENV) or None,
            hmac_secret=environ.get(HMAC_SECRET_ENV) or None,
            coral_secret=environ.get(CORAL_SECRET_ENV) or None,
        )


# --------------------------------------------------------------------------- API models


class _In(BaseModel):
    """Request models: every text field is :data:`~classifier.schema.Text` (a string of
    valid Unicode, never a number turned into one); ids are :data:`~classifier.schema.Id`
    (comment systems send them as numbers, WordPress, or strings, Coral)."""


class ArticleIn(_In):
    """The article a comment is posted under. Give ``title`` and ``text``; ``id``/``url``
    alone refer to an article whose text an earlier request carried (if still cached)."""

    id: Id | None = None
    title: Text | None = None
    text: Text | None = Field(
        default=None, description="Article body; its first paragraph is used."
    )
    url: Text | None = None


class CommentIn(_In):
    """One comment and its context."""

    text: Text = Field(min_length=1, description="The comment's text.")
    comment_id: Id | None = None
    author: Text | None = Field(default=None, description="Author name or id (never logged).")
    parent_id: Id | None = Field(default=None, description="Id of the comment this one replies to.")
    parent_text: Text | None = Field(
        default=None,
        description="Text of the comment this one replies to (stance is taken toward it).",
    )
    article: ArticleIn | None = None


class ScoreRequest(_In):
    """A batch of comments; ``article`` applies to those that do not name their own."""

    comments: list[CommentIn]
    article: ArticleIn | None = None
    sort: Literal["input", "constructive"] = Field(
        default="input",
        description="Order of the results: as sent, or most constructive first (each "
        "result then carries its 'index' in the request; with a model that gives no "
        "constructive scores the order stays as sent).",
    )


class SpanOut(BaseModel):
    """A toxic span the model found: ``text[start:end]`` of the comment as scored (after
    HTML is stripped, on ``/v1/coral`` and ``/v1/wordpress``), which ``text`` repeats."""

    start: int = Field(description="Character offset of the span's first character.")
    end: int = Field(description="Character offset just past the span's last character.")
    label: str = Field(
        description="Its type: insult, obscene, identity_attack, threat, or toxicity "
        "(toxic, no type decided)."
    )
    score: float = Field(description="The span's highest toxicity probability.")
    text: str = Field(description="The flagged words themselves.")


class ReasonOut(BaseModel):
    label: str
    score: float
    threshold: float
    action: Literal["review", "reject", "feature"]
    spans: list[SpanOut] | None = Field(
        default=None,
        description="The toxic spans behind a toxicity reason (see spans_for_reason); "
        "absent when the model gives no spans and for labels without spans (spam, feature).",
    )


class StanceOut(BaseModel):
    label: str | None
    scores: dict[str, float]
    target: Literal["parent", "article", "none"] = Field(
        description="What the stance is toward: the parent comment, the article, or nothing."
    )


class ModerateResponse(BaseModel):
    request_id: str
    comment_id: str | None
    decision: Literal["feature", "approve", "review", "reject"] = Field(
        description="feature: approved and worth showing first (the policy's feature rule); "
        "approve; review: hold for a moderator; reject."
    )
    reasons: list[ReasonOut]
    scores: dict[str, float]
    constructive: dict[str, float] | None = Field(
        default=None,
        description="Constructiveness by label, when the model gives it (else absent).",
    )
    spans: list[SpanOut] | None = Field(
        default=None, description="Every toxic span, when the model gives them (else absent)."
    )
    stance: StanceOut
    model_version: str
    latency_ms: float


class ScoreResult(BaseModel):
    comment_id: str | None
    index: int | None = Field(
        default=None,
        description="The comment's position in the request (only with sort=constructive).",
    )
    scores: dict[str, float]
    constructive: dict[str, float] | None = Field(
        default=None,
        description="Constructiveness by label, when the model gives it (else absent).",
    )
    spans: list[SpanOut] | None = Field(
        default=None, description="Every toxic span, when the model gives them (else absent)."
    )
    stance: StanceOut


class ScoreResponse(BaseModel):
    request_id: str
    results: list[ScoreResult]
    model_version: str
    latency_ms: float


class CoralComment(_In):
    body: Text
    parentID: Id | None = None
    id: Id | None = None


class CoralAuthor(_In):
    id: Id | None = None
    role: Text | None = None
    username: Text | None = None


class CoralStory(_In):
    id: Id | None = None
    url: Text | None = None


class CoralSite(_In):
    id: Id | None = None


class CoralRequest(_In):
    """Coral Talk's external moderation request (``action``, ``comment``, ``author``, ``story``...)."""

    action: Literal["NEW", "EDIT"]
    comment: CoralComment
    author: CoralAuthor | None = None
    story: CoralStory | None = None
    site: CoralSite | None = None
    tenantID: Id | None = None
    tenantDomain: Text | None = None


class CoralAction(BaseModel):
    actionType: Literal["FLAG"] = "FLAG"
    reason: Literal["COMMENT_DETECTED_TOXIC", "COMMENT_DETECTED_SPAM"]


class CoralResponse(BaseModel):
    """Coral's external moderation response; ``metadata`` is ours (Coral may drop it)."""

    status: Literal["APPROVED", "PREMOD", "REJECTED", "SYSTEM_WITHHELD"]
    actions: list[CoralAction]
    tags: list[str] = Field(
        default=[], description="Coral comment tags: FEATURED for a comment the policy features."
    )
    metadata: dict[str, Any] = {}


class WordPressRequest(_In):
    """The fields of a WordPress ``pre_comment_approved`` filter's ``$commentdata``,
    plus the post and parent text the plugin adds."""

    comment_content: Text = Field(min_length=1)
    comment_author: Text | None = None
    comment_author_email: Text | None = None
    comment_author_url: Text | None = None
    comment_author_IP: Text | None = None
    comment_type: Text | None = None
    comment_parent: Id | None = Field(default=None, description="Parent comment id; 0 for none.")
    comment_post_ID: Id | None = None
    user_id: Id | None = None
    post_title: Text | None = None
    post_content: Text | None = None
    post_url: Text | None = None
    parent_content: Text | None = Field(
        default=None, description="Text of the parent comment, if any."
    )


class WordPressResponse(BaseModel):
    approved: Literal[1, 0, "spam", "trash"] = Field(
        description="What pre_comment_approved should return: 1, 0 (hold), 'spam' or 'trash'."
    )
    decision: Literal["approve", "review", "reject"] = Field(
        description="A featured comment is 'approve' here, with featured: true (plugins "
        "written for the three decisions keep working)."
    )
    featured: bool | None = Field(
        default=None,
        description="Whether the policy's feature rule picked the comment; present when the "
        "model gives constructive scores.",
    )
    reasons: list[ReasonOut]
    scores: dict[str, float]
    constructive: dict[str, float] | None = Field(
        default=None,
        description="Constructiveness by label, when the model gives it (else absent).",
    )
    spans: list[SpanOut] | None = Field(
        default=None, description="Every toxic span, when the model gives them (else absent)."
    )
    model_version: str
    request_id: str
    latency_ms: float


# --------------------------------------------------------------------------- batching


class MicroBatcher:
    """Collects concurrent scoring jobs and runs them through the model together.

    A job is a list of model inputs. The worker takes the first waiting job,
    then every job already queued, and, while fewer than ``max_batch`` inputs
    are collected and more requests are in the server (``expected()``, e.g.
    the requests in flight) than jobs collected, waits up to ``max_wait_ms``
    for them. A lone request therefore never waits. The model runs in
    ``executor`` (one thread), so the event loop stays free. With
    ``enabled=False`` every job runs on its own (still one at a time).
    """

    def __init__(
        self,
        predict: Callable[[list[CommentItem]], list[Prediction]],
        executor: ThreadPoolExecutor,
        *,
        max_batch: int = 32,
        max_wait_ms: float = 3.0,
        enabled: bool = True,
        expected: Callable[[], int] | None = None,
    ) -> None:
        self.predict = predict
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.enabled = enabled
        self.expected = expected or (lambda: 0)
        self.batches = 0
        self.items = 0
        self._queue: asyncio.Queue[tuple[list[CommentItem], asyncio.Future[list[Prediction]]]]
        self._arrived: asyncio.Event
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._arrived = asyncio.Event()
        if self.enabled:
            self._task = asyncio.create_task(self._run(), name="threadguard-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the service is shutting down"))

    async def submit(self, items: list[CommentItem]) -> list[Prediction]:
        """Predictions for ``items``, in order."""
        loop = asyncio.get_running_loop()
        if not self.enabled:
            self.batches += 1
            self.items += len(items)
            return await loop.run_in_executor(self.executor, self.predict, items)
        future: asyncio.Future[list[Prediction]] = loop.create_future()
        self._queue.put_nowait((items, future))
        self._arrived.set()
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            count = len(jobs[0][0])
            deadline = loop.time() + self.max_wait
            while count < self.max_batch:
                if self._queue.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0 or self.expected() <= len(jobs):
                        break
                    self._arrived.clear()
                    try:
                        await asyncio.wait_for(self._arrived.wait(), remaining)
                    except TimeoutError:
                        break
                    continue
                job = self._queue.get_nowait()
                jobs.append(job)
                count += len(job[0])
            jobs = [j for j in jobs if not j[1].done()]  # a timed-out request left
            if not jobs:
                continue
            items = [item for job_items, _ in jobs for item in job_items]
            self.batches += 1
            self.items += len(items)
            try:
                predictions = await loop.run_in_executor(self.executor, self.predict, items)
            except Exception as exc:
                for _, future in jobs:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for job_items, future in jobs:
                if not future.done():
                    future.set_result(predictions[start : start + len(job_items)])
                start += len(job_items)


# --------------------------------------------------------------------------- helpers


def _footprint(key: str, value: Any) -> int:
    """Bytes an entry holds: its key and its strings (a value is a string or a tuple of them)."""
    parts = value if isinstance(value, tuple) else (value,)
    return sys.getsizeof(key) + sum(sys.getsizeof(p) for p in parts if p is not None)


class _LRU:
    """A bounded mapping, least recently used out first: at most ``size`` entries and
    ``max_bytes`` bytes of keys and strings (an entry bigger than that is not kept)."""

    def __init__(self, size: int, max_bytes: int) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self._data: OrderedDict[str, tuple[Any, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str | None) -> Any:
        if key is None or key not in self._data:
            return None
        self._data.move_to_end(key)
        return self._data[key][0]

    def put(self, key: str | None, value: Any) -> None:
        if key is None or self.size <= 0:
            return
        self._drop(key)
        cost = _footprint(key, value)
        if cost > self.max_bytes:
            return
        self._data[key] = (value, cost)
        self.bytes += cost
        while len(self._data) > self.size or self.bytes > self.max_bytes:
            _, (_, dropped) = self._data.popitem(last=False)
            self.bytes -= dropped

    def _drop(self, key: str) -> None:
        old = self._data.pop(key, None)
        if old is not None:
            self.bytes -= old[1]


_TAG = re.compile(r"<(?:[a-zA-Z/!][^>]*)>")


def strip_html(text: str) -> str:
    """Comment HTML (Coral's HTML format, WordPress's allowed tags) to plain text."""
    if "<" not in text and "&" not in text:
        return text
    text = re.sub(r"<br\s*/?>|</p\s*>", "\n", text, flags=re.IGNORECASE)
    return html.unescape(_TAG.sub(" ", text)).strip()


def signature(secret: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(header: str | None, body: bytes, secrets: Sequence[str]) -> bool:
    """Whether any ``sha256=<hex>`` in ``header`` (comma-separated) signs ``body`` with a secret."""
    if not header or not secrets:
        return False
    expected = [signature(s, body).encode("ascii") for s in secrets]
    ok = False
    for part in header.split(","):
        given = part.strip().lower().encode("utf-8", "replace")
        for candidate in expected:
            ok |= hmac.compare_digest(candidate, given)
    return ok


def _secrets(value: str | None) -> list[str]:
    return [s.strip() for s in (value or "").split(",") if s.strip()]


def default_threads(workers: int = 1) -> int:
    """Torch threads per worker: the cores left after one for the event loop, at most 4.

    On a 2-core machine that is 1: two intra-op threads on two cores shared with
    the HTTP loop (or anything else) stall each other, and a request then takes
    ten times longer instead of half as long.
    """
    return max(1, min(4, (os.cpu_count() or 1) // workers - 1))


def _labels_of(predictor: Any) -> tuple[str, ...] | None:
    labels = getattr(predictor, "toxicity_labels", None)
    if labels is None:
        labels = getattr(getattr(predictor, "model", None), "toxicity_labels", None)
    return tuple(labels) if labels is not None else None


# --------------------------------------------------------------------------- state


class ServiceState:
    """What the app holds between requests: settings, policy, model, batcher, caches."""

    def __init__(
        self, settings: ServiceSettings, policy: Policy, predictor: PredictorLike | None
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.predictor = predictor
        self.model_version = settings.model_version or ("custom" if predictor else "")
        self.model_loaded = predictor is not None
        self.warmed_up = False
        self.error: str | None = None
        self.in_flight = 0
        self.unverified = 0  # signed requests whose body is being read, not yet verified
        self.executor: ThreadPoolExecutor | None = None
        self.batcher: MicroBatcher | None = None
        # Bounded in entries and in bytes: articles get a tenth of the entries and a
        # quarter of the bytes of comments (their titles and leads are longer).
        self.comments = _LRU(settings.cache_size, settings.cache_bytes)
        self.articles = _LRU(
            max(1, settings.cache_size // 10) if settings.cache_size else 0,
            settings.cache_bytes // 4,
        )
        self.tokens = _secrets(settings.token)  # comma-separated: old,new during a rotation
        self.hmac_secrets = _secrets(settings.hmac_secret)
        self.coral_secrets = _secrets(settings.coral_secret)

    # ---------------------------------------------------------------- lifecycle

    def load(self) -> None:
        """Load the model named by the settings (``None``: the default model)."""
        threads = self.settings.threads or default_threads()
        predictor = load_predictor(
            self.settings.model,
            batch_size=self.settings.batch_size,
            num_threads=threads,
            max_batch_tokens=self.settings.batch_tokens,
            backend=self.settings.backend,
        )
        version = predictor.model_version
        if predictor.backend != "torch":  # its scores differ slightly from the reference's
            version += f"-{predictor.backend}"
        self.predictor = predictor
        self.model_version = self.settings.model_version or version
        self.model_loaded = True
        logger.info(
            "loaded model %s (%s backend, %d threads)",
            self.model_version,
            predictor.backend,
            threads,
        )

    async def start(self) -> None:
        if self.predictor is None:
            self.load()
        labels = _labels_of(self.predictor)
        if labels is not None:
            self.policy.check_labels(labels)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="threadguard-model")
        assert self.predictor is not None
        self.batcher = MicroBatcher(
            self.predictor.predict,
            self.executor,
            max_batch=self.settings.batch_size,
            max_wait_ms=self.settings.batch_wait_ms,
            enabled=self.settings.batching,
            expected=lambda: self.in_flight,
        )
        await self.batcher.start()

    async def warm_up(self) -> None:
        assert self.batcher is not None
        try:
            started = time.perf_counter()
            await self.batcher.submit(list(WARMUP_ITEMS))
            await self.batcher.submit(WARMUP_ITEMS[:1])
        except Exception as exc:
            self.error = f"warm-up inference failed: {exc}"
            logger.exception("warm-up inference failed")
            return
        self.warmed_up = True
        logger.info(
            "ready: model %s, warm-up %.0f ms",
            self.model_version,
            (time.perf_counter() - started) * 1000,
        )

    async def stop(self) -> None:
        if self.batcher is not None:
            await self.batcher.stop()
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)

    # ---------------------------------------------------------------- requests

    def check_length(self, text: str | None, field: str) -> None:
        limit = self.settings.max_comment_chars
        if text is not None and len(text) > limit:
            raise HTTPException(
                413,
                f"{field} is {len(text)} characters long; the limit is {limit} characters",
            )

    def article_context(self, article: ArticleIn | None) -> tuple[str | None, str | None]:
        """The article's (title, text), from the request or the cache of recent articles."""
        if article is None:
            return None, None
        if article.title or article.text:
            value = (article.title, trim_words(article.text))  # bounded memory
            self.articles.put(article.id and f"id:{article.id}", value)
            self.articles.put(article.url and f"url:{article.url}", value)
            return value
        cached = self.articles.get(article.id and f"id:{article.id}") or self.articles.get(
            article.url and f"url:{article.url}"
        )
        return cached if cached is not None else (None, None)

    def item_for(
        self,
        text: str,
        *,
        comment_id: str | None = None,
        parent_id: str | None = None,
        parent_text: str | None = None,
        article: ArticleIn | None = None,
    ) -> tuple[CommentItem, str]:
        """The model input for a comment and what its stance is toward."""
        if not (parent_text and parent_text.strip()) and parent_id is not None:
            parent_text = self.comments.get(parent_id)
        title, body = self.article_context(article)
        item = comment_item(text, parent_text, title, body)
        self.comments.put(comment_id, trim_words(text))
        return item, stance_target(item)

    async def predict(self, items: list[CommentItem], request: Request) -> list[Prediction]:
        assert self.batcher is not None
        timeout = self.settings.request_timeout_s
        try:
            return await asyncio.wait_for(self.batcher.submit(items), timeout)
        except TimeoutError:
            raise HTTPException(
                503,
                f"the model did not answer within {timeout:g} s; retry later",
                headers={"Retry-After": "1"},
            ) from None
        except Exception:
            logger.exception("request %s: scoring failed", _request_id(request))
            raise HTTPException(
                500, f"scoring failed (request {_request_id(request)}); see the service log"
            ) from None


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.threadguard
    return state


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def _elapsed_ms(request: Request) -> float:
    started = request.scope.get("state", {}).get("started", time.perf_counter())
    return round((time.perf_counter() - started) * 1000, 2)


def _note(request: Request, decision: str) -> None:
    request.scope.setdefault("state", {})["decision"] = decision


def _stance(prediction: Mapping[str, Any], target: str) -> dict[str, Any]:
    return {
        "label": prediction["stance"]["label"],
        "scores": prediction["stance"]["scores"],
        "target": target,
    }


def _spam_labels(decision: Decision, actions: tuple[str, ...]) -> tuple[bool, bool]:
    """Whether the reasons with one of ``actions`` include spam, and anything else."""
    labels = {r.label for r in decision.reasons if r.action in actions}
    return "spam" in labels, bool(labels - {"spam"})


#: Reasons for toxicity in general: every toxic span stands behind them.
_GENERAL_LABELS = frozenset({"toxicity", "severe_toxicity"})


def spans_for_reason(
    label: str, spans: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]] | None:
    """The spans that show a moderator why the rule for ``label`` triggered.

    - ``toxicity`` and ``severe_toxicity``: every span (each is toxic);
    - ``insult``, ``obscene``, ``identity_attack``, ``threat``: the spans of that type, and
      the spans of no decided type (labelled ``toxicity``: toxic words the model could not
      type, which may well be what the rule saw);
    - any other label (``spam``, a feature reason): ``None``, as no span head covers it.
    """
    if label in _GENERAL_LABELS:
        return list(spans)
    if label in SPAN_LABELS:
        return [s for s in spans if s.get("label") in (label, "toxicity")]
    return None


def _span_out(span: Mapping[str, Any], text: str) -> dict[str, Any]:
    """A span for a response: its offsets, label and score, and the words it covers."""
    start, end = int(span["start"]), int(span["end"])
    return {
        "start": start,
        "end": end,
        "label": str(span["label"]),
        "score": float(span["score"]),
        "text": text[max(0, start) : max(0, end)],
    }


def _heads(prediction: Mapping[str, Any], text: str) -> dict[str, Any]:
    """The optional heads' part of a response: ``constructive`` and ``spans``, each only
    when the model gives it, so a model without those heads answers as before."""
    out: dict[str, Any] = {}
    if "constructive" in prediction:
        out["constructive"] = {str(k): float(v) for k, v in prediction["constructive"].items()}
    if "spans" in prediction:
        out["spans"] = [_span_out(s, text) for s in prediction["spans"]]
    return out


def _reasons(decision: Decision, spans: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The decision's reasons, each with its spans (:func:`spans_for_reason`) when the model
    gives spans and the label has any."""
    out = []
    for reason in decision.reasons:
        item = reason.to_dict()
        chosen = spans_for_reason(reason.label, spans) if spans is not None else None
        if chosen is not None:
            item["spans"] = chosen
        out.append(item)
    return out


def _moderation(prediction: Mapping[str, Any], decision: Decision, text: str) -> dict[str, Any]:
    """``reasons`` (with their spans), ``scores``, and the optional ``constructive`` and
    ``spans``: the part of a response every moderating endpoint shares."""
    heads = _heads(prediction, text)
    return {
        "reasons": _reasons(decision, heads.get("spans")),
        "scores": dict(decision.scores),
        **heads,
    }


def _constructive_key(result: Mapping[str, Any]) -> float:
    """Sort key, most constructive first: minus the ``constructive`` score (results without
    one last, in their order)."""
    return -float((result.get("constructive") or {}).get("constructive", -1.0))


# --------------------------------------------------------------------------- the guard


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


#: Deepest nesting of objects and lists accepted in a request body (ours nest 4 deep).
MAX_REQUEST_DEPTH = 32
#: What :meth:`_Guard._header_auth` answers when only the body can tell (a signature).
_NEEDS_BODY = "needs-body"


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether parsed JSON nests more than ``limit`` levels (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return False


def body_problem(body: bytes) -> tuple[str, str] | None:
    """``(message, type)`` if ``body`` is not JSON the service can read, else ``None``.

    Checked before FastAPI parses the body, so that bytes that are not UTF-8 and
    JSON nested past the parser's recursion limit are a 422 like any other
    malformed JSON (FastAPI answers those with a 400).
    """
    if not body:
        return None  # FastAPI reports the missing fields
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8: byte {body[exc.start]:#04x} at offset {exc.start}", "utf8_invalid"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", "json_invalid"
    except RecursionError:
        return "malformed JSON: nested too deeply", "json_too_deep"
    except ValueError as exc:  # e.g. an integer over Python's digit limit
        return f"malformed JSON: {exc}", "json_invalid"
    if _nests_deeper(value, MAX_REQUEST_DEPTH):
        return f"JSON nests deeper than {MAX_REQUEST_DEPTH} levels", "json_too_deep"
    return None


class _Guard:
    """ASGI middleware for ``/v1/``: credentials, body limits and deadline, in-flight limit, logging.

    The order is the point: nothing is held for a client before it has shown
    credentials (a bearer token is checked from the headers; a signed request's
    body is read within the size limit and the deadline, in a pool of its own
    bounded by ``max_unverified``), and an in-flight slot is taken only once
    the request is authenticated and its body complete and readable.
    """

    def __init__(self, app: Any, state: ServiceState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        st = self.state
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given_id = headers.get("x-request-id", "")
        request_id = given_id if _REQUEST_ID.match(given_id) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {}).update(request_id=request_id, started=started)
        path: str = scope["path"]
        status = [500]

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (b"x-request-id", request_id.encode()),
                    ],
                }
            await send(message)

        if not path.startswith("/v1/"):
            await self.app(scope, receive, send_with_id)
            logger.debug("%s %s %s %d", request_id, scope["method"], path, status[0])
            return

        close = [(b"connection", b"close")]  # the body may be unread: end the connection
        # 1. Credentials from the headers, before any byte of the body is read.
        verdict = self._header_auth(path, headers)
        if verdict != _NEEDS_BODY and verdict is not None:
            await self._unauthorized(send_with_id, request_id, scope, verdict)
            self._log(request_id, scope, status[0], started, "unauthorized")
            return
        # 2. The body, within its limit and deadline; unverified requests in their own pool.
        unverified = verdict == _NEEDS_BODY
        if unverified:
            if st.unverified >= st.settings.max_unverified:
                await _reply_overloaded(
                    send_with_id, st.unverified, "signed requests being read",
                    st.settings.max_unverified, close,
                )  # fmt: skip
                self._log(request_id, scope, status[0], started, "overloaded")
                return
            st.unverified += 1
        try:
            body = await self._read_body(scope, receive, headers, send_with_id)
        finally:
            if unverified:
                st.unverified -= 1
        if body is None:  # answered 408/413, or the client left (logged as nginx's 499)
            code = status[0] if status[0] != 500 else 499
            self._log(request_id, scope, code, started, "body refused" if code != 499 else "left")
            return
        # 3. A signature over the body.
        if unverified and (problem := self._signature_problem(path, headers, body)):
            await self._unauthorized(send_with_id, request_id, scope, problem)
            self._log(request_id, scope, status[0], started, "unauthorized")
            return
        # 4. JSON the app can read (UTF-8, bounded nesting): 422 like any malformed JSON.
        if (bad := body_problem(body)) is not None:
            message, kind = bad
            payload = {
                "detail": f"body: {message}",
                "errors": [{"field": "body", "message": message, "type": kind}],
            }
            await _reply_json(send_with_id, 422, payload)
            self._log(request_id, scope, status[0], started, "invalid")
            return
        # 5. Only now an in-flight slot.
        if st.in_flight >= st.settings.max_in_flight:
            await _reply_overloaded(
                send_with_id, st.in_flight, "requests in flight", st.settings.max_in_flight
            )
            self._log(request_id, scope, status[0], started, "overloaded")
            return
        st.in_flight += 1
        try:
            sent = False

            async def replay() -> dict[str, Any]:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_with_id)
            self._log(request_id, scope, status[0], started, scope["state"].get("decision"))
        finally:
            st.in_flight -= 1

    async def _unauthorized(
        self, send: Send, request_id: str, scope: dict[str, Any], problem: str
    ) -> None:
        await _reply(
            send,
            401,
            problem,
            [(b"www-authenticate", b'Bearer realm="threadguard"'), (b"connection", b"close")],
        )
        logger.warning("%s %s %s 401: %s", request_id, scope["method"], scope["path"], problem)

    async def _read_body(
        self, scope: dict[str, Any], receive: Receive, headers: dict[str, str], send: Send
    ) -> bytes | None:
        """The whole body, or ``None`` once answered: 413 over the limit (declared or
        sent), 408 past the deadline; ``None`` without an answer if the client left."""
        settings = self.state.settings
        limit = (
            settings.max_batch_body_bytes
            if scope["path"] == "/v1/score"
            else settings.max_body_bytes
        )
        message = f"request body is over the limit of {limit} bytes"
        close = [(b"connection", b"close")]
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _reply(send, 413, message, close)
            return None
        chunks: list[bytes] = []

        async def read() -> bool:
            size = 0
            while True:
                event = await receive()
                if event["type"] == "http.disconnect":
                    return False
                if event["type"] != "http.request":
                    return True
                chunk = event.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _TooLarge
                chunks.append(chunk)
                if not event.get("more_body", False):
                    return True

        timeout = settings.body_timeout_s
        try:
            complete = await asyncio.wait_for(read(), timeout)
        except _TooLarge:
            await _reply(send, 413, message, close)
            return None
        except TimeoutError:
            await _reply(send, 408, f"the request body did not arrive within {timeout:g} s", close)
            return None
        return b"".join(chunks) if complete else None

    def _header_auth(self, path: str, headers: dict[str, str]) -> str | None:
        """``None`` if the headers authenticate the request, :data:`_NEEDS_BODY` if only a
        signature over the body can, else what is wrong with the credentials."""
        st = self.state
        if st.settings.no_auth:
            return None
        authorization = headers.get("authorization", "")
        sig = headers.get(SIGNATURE_HEADER)
        coral_sig = headers.get(CORAL_SIGNATURE_HEADER) if path == "/v1/coral" else None
        if not (authorization or sig or coral_sig):
            return (
                "missing credentials: send 'Authorization: Bearer <token>' or "
                f"'{SIGNATURE_HEADER}: sha256=<HMAC-SHA256 of the body>'"
                + (f" or '{CORAL_SIGNATURE_HEADER}'" if path == "/v1/coral" else "")
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token:
            given = token.strip().encode("utf-8", "replace")
            ok = False
            for expected in st.tokens:
                ok |= hmac.compare_digest(expected.encode("utf-8"), given)
            if ok:
                return None
        if (sig and st.hmac_secrets) or (coral_sig and st.coral_secrets):
            return _NEEDS_BODY
        return "invalid credentials: the token or signature does not match"

    def _signature_problem(self, path: str, headers: dict[str, str], body: bytes) -> str | None:
        """``None`` if a signature header signs ``body``, else what is wrong."""
        st = self.state
        if verify_signature(headers.get(SIGNATURE_HEADER), body, st.hmac_secrets):
            return None
        coral_sig = headers.get(CORAL_SIGNATURE_HEADER) if path == "/v1/coral" else None
        if coral_sig and verify_signature(coral_sig, body, st.coral_secrets):
            return None
        return "invalid credentials: the token or signature does not match"

    def _log(
        self,
        request_id: str,
        scope: dict[str, Any],
        status: int,
        started: float,
        outcome: str | None,
    ) -> None:
        # Never the comment text: id, route, status, outcome and latency only.
        logger.info(
            "%s %s %s %d %s %.1f ms",
            request_id,
            scope["method"],
            scope["path"],
            status,
            outcome or "-",
            (time.perf_counter() - started) * 1000,
        )


class _TooLarge(Exception):
    """The body grew past its limit while being read."""


async def _reply(
    send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _reply_json(send, status, {"detail": detail}, headers)


async def _reply_overloaded(
    send: Send,
    count: int,
    what: str,
    limit: int,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """503 with Retry-After: 1, naming what is full and its limit."""
    detail = f"overloaded: {count} {what} (limit {limit}); retry after 1 s"
    await _reply(send, 503, detail, [(b"retry-after", b"1"), *(headers or [])])


async def _reply_json(
    send: Send,
    status: int,
    payload: dict[str, Any],
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- the app


def create_app(
    settings: ServiceSettings | None = None,
    predictor: PredictorLike | None = None,
    policy: Policy | None = None,
) -> FastAPI:
    """The moderation service as an ASGI app.

    Args:
        settings: configuration; default :class:`ServiceSettings` (which refuses
            to start: give a secret or ``no_auth=True``).
        predictor: an object with ``predict(items)`` like
            :class:`~classifier.inference.Predictor` (tests inject fakes); by
            default the model named by ``settings.model`` is loaded at start-up.
        policy: the policy; by default loaded from ``settings.policy`` (or the
            built-in default).

    Raises :class:`ServiceConfigError` (before any model is loaded) for
    unusable settings and ``ValueError``/``OSError`` for a bad policy file.
    """
    settings = settings or ServiceSettings()
    settings.validate()
    if settings.no_auth:
        logger.warning("authentication is disabled (--no-auth): for local use only")
    policy = policy if policy is not None else Policy.load(settings.policy)
    state = ServiceState(settings, policy, predictor)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        try:
            await state.start()
        except Exception as exc:
            logger.error("cannot start the moderation service: %s", exc)
            raise
        warm = asyncio.create_task(state.warm_up(), name="threadguard-warm-up")
        try:
            yield
        finally:
            warm.cancel()
            await state.stop()

    app = FastAPI(
        title="threadguard moderation service",
        version=__version__,
        description=(
            "Stance and toxicity for reader comments, and moderation decisions from them. "
            "Send 'Authorization: Bearer <token>' or 'X-Threadguard-Signature: "
            "sha256=<HMAC-SHA256 of the raw body>' with every /v1/ request."
        ),
        lifespan=lifespan,
        # The schema and the interactive docs are open to anyone: off unless asked for
        # (on by default only with --no-auth, i.e. local use).
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url="/redoc" if settings.docs_enabled else None,
    )
    app.state.threadguard = state
    app.add_middleware(_Guard, state=state)
    # Authentication happens in _Guard; this only documents the scheme in the OpenAPI schema.
    auth = [Depends(HTTPBearer(auto_error=False))]

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ())]
            if loc[:1] == ["body"]:
                loc = loc[1:]
            if error.get("type") == "json_invalid":
                field, message = "body", f"malformed JSON: {error.get('ctx', {}).get('error', '')}"
            else:
                field, message = ".".join(loc) or "body", str(error.get("msg", "invalid"))
            errors.append({"field": field, "message": message, "type": error.get("type")})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is alive (it may still be warming up)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """200 once the model is loaded and a warm-up inference has run, else 503."""
        body = {
            "ready": state.model_loaded and state.warmed_up,
            "model_loaded": state.model_loaded,
            "warmed_up": state.warmed_up,
            "model_version": state.model_version,
        }
        if state.error:
            body["error"] = state.error
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/v1/policy", tags=["moderation"], dependencies=auth)
    async def get_policy() -> dict[str, Any]:
        """The policy in force (the policy file's content)."""
        return {"source": state.policy.source, **state.policy.to_dict()}

    # Optional fields (a model's constructive scores and spans) are left out of an answer
    # that does not set them: a model without those heads answers as it always did.
    @app.post(
        "/v1/moderate",
        response_model=ModerateResponse,
        response_model_exclude_unset=True,
        tags=["moderation"],
        dependencies=auth,
    )
    async def moderate(comment: CommentIn, request: Request) -> dict[str, Any]:
        """Decision, reasons (with the toxic spans behind them), scores, constructiveness,
        spans and stance for one comment."""
        state.check_length(comment.text, "text")
        state.check_length(comment.parent_text, "parent_text")
        item, target = state.item_for(
            comment.text,
            comment_id=comment.comment_id,
            parent_id=comment.parent_id,
            parent_text=comment.parent_text,
            article=comment.article,
        )
        (prediction,) = await state.predict([item], request)
        decision = state.policy.decide(prediction)
        _note(request, decision.decision)
        return {
            "request_id": _request_id(request),
            "comment_id": comment.comment_id,
            "decision": decision.decision,
            **_moderation(prediction, decision, comment.text),
            "stance": _stance(prediction, target),
            "model_version": state.model_version,
            "latency_ms": _elapsed_ms(request),
        }

    @app.post(
        "/v1/score",
        response_model=ScoreResponse,
        response_model_exclude_unset=True,
        tags=["moderation"],
        dependencies=auth,
    )
    async def score(batch: ScoreRequest, request: Request) -> dict[str, Any]:
        """Scores, constructiveness, spans and stance (no decisions) for a batch of comments;
        ``sort=constructive`` answers them most constructive first (a thread's best first)."""
        limit = state.settings.max_batch
        if len(batch.comments) > limit:
            raise HTTPException(
                413, f"comments has {len(batch.comments)} items; the limit is {limit} a request"
            )
        items, targets = [], []
        for i, comment in enumerate(batch.comments):
            state.check_length(comment.text, f"comments.{i}.text")
            state.check_length(comment.parent_text, f"comments.{i}.parent_text")
            item, target = state.item_for(
                comment.text,
                comment_id=comment.comment_id,
                parent_id=comment.parent_id,
                parent_text=comment.parent_text,
                article=comment.article or batch.article,
            )
            items.append(item)
            targets.append(target)
        predictions = await state.predict(items, request) if items else []
        _note(request, f"{len(items)} scored")
        results = [
            {
                "comment_id": c.comment_id,
                "scores": p["toxicity"],
                **_heads(p, c.text),
                "stance": _stance(p, t),
            }
            for c, p, t in zip(batch.comments, predictions, targets, strict=True)
        ]
        if batch.sort == "constructive":
            for index, result in enumerate(results):
                result["index"] = index
            results.sort(key=_constructive_key)  # stable: ties keep the request's order
        return {
            "request_id": _request_id(request),
            "results": results,
            "model_version": state.model_version,
            "latency_ms": _elapsed_ms(request),
        }

    @app.post(
        "/v1/coral",
        response_model=CoralResponse,
        response_model_exclude_unset=True,
        tags=["integrations"],
        dependencies=auth,
        responses={204: {"description": "Nothing to moderate (empty comment body)."}},
    )
    async def coral(body: CoralRequest, request: Request) -> Any:
        """Coral Talk's external moderation phase (request signed with X-Coral-Signature)."""
        text = strip_html(body.comment.body)
        if not text.strip():
            _note(request, "empty")
            return Response(status_code=204)
        state.check_length(text, "comment.body")
        story = body.story or CoralStory()
        item, _ = state.item_for(
            text,
            comment_id=body.comment.id,
            parent_id=body.comment.parentID,
            article=ArticleIn(id=story.id, url=story.url),
        )
        (prediction,) = await state.predict([item], request)
        decision = state.policy.decide(prediction)
        _note(request, decision.decision)
        status = {
            "feature": "APPROVED",
            "approve": "APPROVED",
            "review": "SYSTEM_WITHHELD",
            "reject": "REJECTED",
        }[decision.decision]
        spam, other = _spam_labels(decision, ("review", "reject"))
        actions = []
        if other:
            actions.append({"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"})
        if spam:
            actions.append({"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"})
        found = _moderation(prediction, decision, text)
        found.pop("scores")  # as before: Coral's metadata carries no scores
        return {
            "status": status,
            "actions": actions,
            # Coral's own tag for editors' picks: the comment shows in the Featured tab
            "tags": ["FEATURED"] if decision.decision == "feature" else [],
            "metadata": {
                "threadguard": {
                    "decision": decision.decision,
                    **found,
                    "model_version": state.model_version,
                    "request_id": _request_id(request),
                }
            },
        }

    @app.post(
        "/v1/wordpress",
        response_model=WordPressResponse,
        response_model_exclude_unset=True,
        tags=["integrations"],
        dependencies=auth,
    )
    async def wordpress(body: WordPressRequest, request: Request) -> dict[str, Any]:
        """What a WordPress ``pre_comment_approved`` filter should return for a comment."""
        text = strip_html(body.comment_content)
        state.check_length(text, "comment_content")
        state.check_length(body.parent_content, "parent_content")
        item, _ = state.item_for(
            text,
            parent_text=strip_html(body.parent_content) if body.parent_content else None,
            article=ArticleIn(
                id=body.comment_post_ID and f"wp:{body.comment_post_ID}",
                title=body.post_title,
                text=strip_html(body.post_content) if body.post_content else None,
                url=body.post_url,
            ),
        )
        (prediction,) = await state.predict([item], request)
        decision = state.policy.decide(prediction)
        _note(request, decision.decision)
        approved: Literal[1, 0, "spam", "trash"]
        if decision.decision in ("feature", "approve"):
            approved = 1
        elif decision.decision == "review":
            approved = 0
        else:
            approved = "spam" if _spam_labels(decision, ("reject",))[0] else "trash"
        # WordPress has no "featured" status, and plugins check for the three decisions:
        # a featured comment is approved, with featured: true (the plugin keeps it as meta).
        extra = {"featured": decision.decision == "feature"} if "constructive" in prediction else {}
        return {
            "approved": approved,
            "decision": "approve" if decision.decision == "feature" else decision.decision,
            **extra,
            **_moderation(prediction, decision, text),
            "model_version": state.model_version,
            "request_id": _request_id(request),
            "latency_ms": _elapsed_ms(request),
        }

    return app


def create_app_from_env() -> FastAPI:
    """App factory for uvicorn workers: settings from :meth:`ServiceSettings.from_env`.

    ``uvicorn --factory classifier.moderation.app:create_app_from_env`` (what
    ``threadguard serve --workers N`` runs for N > 1).
    """
    return create_app(ServiceSettings.from_env())
