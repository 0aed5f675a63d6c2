"""What the hook holds between requests, and the one path from a comment to a decision.

:class:`ServiceState` owns the model (loaded at start-up, warmed up in the background),
the micro-batcher, the policy, the credentials and the bounded caches of recent comments
and articles (so that a reply may name its parent by id, and a comment its article by id
or URL, once an earlier request carried their text). It also counts the requests in flight
and the signed requests still being read, which the guard (:mod:`.guard`) bounds.

Every moderating endpoint runs the same chain, :meth:`ServiceState.moderate`: check the
lengths of the fields the model reads (413), build the model input with its context
(:meth:`ServiceState.prepare`), predict through the batcher (503 on a timeout), and
decide with the policy. The endpoints differ only in how they map their request onto a
:class:`CommentInput` and the :class:`Moderated` outcome onto their answer
(:mod:`.integrations` for Coral and WordPress).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import HTTPException

from classifier.model.constants import WINDOW_OVERLAP
from classifier.model.loading import load_predictor
from classifier.model.predictor import BatchPredictor, PredictOptions
from classifier.model.replies import item_field
from classifier.moderation.auth import Credentials
from classifier.moderation.batching import MicroBatcher
from classifier.moderation.feedback import FeedbackStore
from classifier.moderation.policy import Decision, Policy
from classifier.moderation.schemas import ArticleIn
from classifier.moderation.settings import ServiceSettings, default_threads
from classifier.schema import Scored
from classifier.targets import CommentItem, comment_item, stance_target, trim_words

if TYPE_CHECKING:
    from classifier.model.predictor import Prediction

logger = logging.getLogger(__name__)

#: Tokens in one window of the model's input; a comment is read in windows of this size.
WINDOW_TOKENS = 256
#: Tokens a window moves on by (its overlap with the one before read again).
WINDOW_STEP = WINDOW_TOKENS - WINDOW_OVERLAP
#: Characters counted a token when estimating a comment's windows without tokenising it
#: (English runs about 4.5 characters a token; 3 keeps dense text from being undercounted).
CHARS_PER_TOKEN = 3


def item_cost(item: CommentItem) -> int:
    """The model work ``item`` asks for, in tokens: one window for the stance pass, and
    each window its text is read in for toxicity, estimated from its length (counting
    needs no tokenizer, so the event loop never tokenises a megabyte to refuse it)."""
    tokens = -(-len(item_field(item, "text")) // CHARS_PER_TOKEN)
    windows = max(1, -(-max(0, tokens - WINDOW_TOKENS) // WINDOW_STEP) + 1)
    return (1 + windows) * WINDOW_TOKENS


WARMUP_ITEMS: list[CommentItem] = [
    comment_item(
        "Thanks for the report, but where is the evidence for the figures?",
        article_title="Council approves new budget",
        article_text="The city council approved the budget on Tuesday.",
    ),
    comment_item("I agree with you.", parent_text="This is the best article on the topic."),
]


class PredictorLike(Protocol):
    """What the service needs of a predictor: :meth:`classifier.model.predictor.BatchPredictor.predict`."""

    def predict(self, items: Any) -> list[Prediction]: ...


@dataclass(frozen=True)
class CommentInput:
    """One comment to moderate, whichever endpoint it came from.

    ``text`` is what the model reads (HTML already stripped); ``checked`` names, in order,
    the request fields whose length is limited (``max_comment_chars``) with their values,
    so that a 413 names the field as the client sent it.
    """

    text: str
    comment_id: str | None = None
    parent_id: str | None = None
    parent_text: str | None = None
    article: ArticleIn | None = None
    checked: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class Moderated:
    """The outcome of :meth:`ServiceState.moderate`: the text as scored, the model's
    prediction, the policy's decision, and what the stance is toward."""

    text: str
    prediction: Prediction
    decision: Decision
    target: str

    @cached_property
    def scored(self) -> Scored:
        """The prediction typed, as the answers carry it."""
        return Scored.of(self.text, self.prediction, self.target)


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


def _labels_of(predictor: Any) -> tuple[str, ...] | None:
    labels = getattr(predictor, "toxicity_labels", None)
    if labels is None:
        labels = getattr(getattr(predictor, "model", None), "toxicity_labels", None)
    return tuple(labels) if labels is not None else None


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
        # moderators' decisions (comments:suggestscore), when the site keeps them
        self.feedback = FeedbackStore(settings.feedback) if settings.feedback else None
        # each comma-separated: old,new during a rotation
        self.credentials = Credentials.from_settings(
            settings.token, settings.hmac_secret, settings.coral_secret, no_auth=settings.no_auth
        )

    # ---------------------------------------------------------------- lifecycle

    def load(self) -> None:
        """Load the model named by the settings (``None``: the default model)."""
        threads = self.settings.threads or default_threads()
        options = PredictOptions(
            batch_size=self.settings.batch_size,
            max_batch_tokens=self.settings.batch_tokens,
        )
        predictor = load_predictor(
            self.settings.model,
            num_threads=threads,
            backend=self.settings.backend,
            options=options,
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
        if isinstance(self.predictor, BatchPredictor):  # spans explain what this policy holds
            self.predictor = self.predictor.with_options(span_holds=self.policy.holds())
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="threadguard-model")
        assert self.predictor is not None
        self.batcher = MicroBatcher(
            self.predictor.predict,
            self.executor,
            max_batch=self.settings.batch_size,
            max_wait_ms=self.settings.batch_wait_ms,
            enabled=self.settings.batching,
            expected=lambda: self.in_flight,
            slice_cost=self.settings.slice_tokens,
        )
        hooked = self.batcher.install_gate(self.predictor)
        if hooked is not None:
            self.predictor = hooked
            logger.info("small requests run between the forward passes of long ones")
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

    def check_budget(self, costs: list[int]) -> None:
        """413 when the items' work (:func:`item_cost`) is over ``max_request_tokens``."""
        limit = self.settings.max_request_tokens
        total = sum(costs)
        if total > limit:
            raise HTTPException(
                413,
                f"the request asks for about {total} tokens of model work ({total // WINDOW_TOKENS} "
                f"windows of {WINDOW_TOKENS}: a long comment counts each window it is read in); "
                f"the limit is {limit} a request: send fewer or shorter comments",
            )

    async def predict(self, items: list[CommentItem], request_id: str) -> list[Prediction]:
        """Predictions for ``items`` through the batcher: 413 if they ask for more work than
        ``max_request_tokens``, 503 if the model does not answer within
        ``request_timeout_s`` (the work not yet done is then dropped, as it is when the
        request is cancelled because its client went away), 500 (logged with
        ``request_id``) if it fails."""
        assert self.batcher is not None
        costs = [item_cost(item) for item in items]
        self.check_budget(costs)
        timeout = self.settings.request_timeout_s
        try:
            return await asyncio.wait_for(self.batcher.submit(items, costs), timeout)
        except asyncio.TimeoutError:  # TimeoutError on 3.11+, not on 3.10
            raise HTTPException(
                503,
                f"the model did not answer within {timeout:g} s; retry later",
                headers={"Retry-After": "1"},
            ) from None
        except Exception:
            logger.exception("request %s: scoring failed", request_id)
            raise HTTPException(
                500, f"scoring failed (request {request_id}); see the service log"
            ) from None

    def prepare(self, comment: CommentInput) -> tuple[CommentItem, str]:
        """The model input for ``comment`` and what its stance is toward, once the fields
        it names are within the length limit (else 413)."""
        for field, value in comment.checked:
            self.check_length(value, field)
        return self.item_for(
            comment.text,
            comment_id=comment.comment_id,
            parent_id=comment.parent_id,
            parent_text=comment.parent_text,
            article=comment.article,
        )

    async def moderate(self, comment: CommentInput, request_id: str) -> Moderated:
        """The chain every moderating endpoint shares: check, model input, predict, decide."""
        item, target = self.prepare(comment)
        (prediction,) = await self.predict([item], request_id)
        return Moderated(comment.text, prediction, self.policy.decide(prediction), target)
