"""Batched prediction in input order, whatever runs the batches.

:class:`BatchPredictor` tokenises inputs a chunk at a time, sorts them by length so that
each batch pads little, has a subclass run each batch (the torch
:class:`~classifier.model.torch_predictor.Predictor` or the ONNX
:class:`~classifier.model.onnx_predictor.OnnxPredictor`), and returns stance and
toxicity in input order. With a comment model attached, toxicity, constructiveness and
toxic spans come from that model reading each comment alone and whole, in overlapping
windows (:meth:`BatchPredictor.comment_scores`), with the saved calibration applied.

This module imports neither torch nor transformers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, TypedDict, cast

import numpy as np

from classifier.model.constants import WINDOW_OVERLAP, Backend
from classifier.model.encoding import EncodedInput, InputEncoder
from classifier.model.replies import HeadSpec, item_field, reply_mask, shift_classes
from classifier.model.spans import (
    DEFAULT_HOLD,
    DEFAULT_SPAN_THRESHOLD,
    Span,
    decode_spans,
    explaining_spans,
)


class StancePrediction(TypedDict):
    """Most likely stance and the probability of every stance class the model has."""

    label: str
    scores: dict[str, float]


class _RequiredPrediction(TypedDict):
    stance: StancePrediction
    toxicity: dict[str, float]


# The optional keys sit in a total=False subclass: typing.NotRequired is 3.11+.
class Prediction(_RequiredPrediction, total=False):
    """Prediction for one comment: stance (softmax) and toxicity (independent sigmoids);
    with a comment model that has those heads, constructiveness (sigmoids, by label) and
    the toxic spans (character offsets into the comment's text)."""

    constructive: dict[str, float]
    spans: list[Span]


class BatchOutput(NamedTuple):
    """Probabilities of one batch: stance [B, S], toxicity [B, T], each stance head's
    [B, H, S]; with those heads, per-token span probabilities [B, L, K] and
    constructiveness [B, C]."""

    stance: np.ndarray
    toxicity: np.ndarray
    by_head: np.ndarray
    spans: np.ndarray | None = None
    constructive: np.ndarray | None = None


class TokenSpanProbs(NamedTuple):
    """One text's tokens: character offsets, word ids, span probabilities [n_tokens, K]."""

    offsets: list[tuple[int, int]]
    word_ids: list[int | None]
    probs: np.ndarray


class CommentScores(NamedTuple):
    """What the comment model gives for texts read alone and whole (see
    :meth:`BatchPredictor.comment_scores`)."""

    toxicity: np.ndarray
    constructive: np.ndarray | None
    spans: list[list[Span]] | None


class BatchPredictor:
    """Batched prediction in input order; subclasses run the encoded batches.

    Inputs are tokenised a chunk at a time, sorted by length so that each batch
    pads little, and returned in input order as plain dicts keyed by label name.

    Args:
        batch_size: most examples per forward pass.
        max_batch_tokens: if given, a batch also stops growing once
            ``examples x longest input`` would exceed it (bounds memory when
            inputs are long).
        chunk_size: inputs are tokenised and length-sorted this many at a time,
            which bounds memory on very long input lists.
    """

    backend: Backend
    stance_labels: tuple[str, ...]
    toxicity_labels: tuple[str, ...]
    #: stance head name → what it was trained on, in logit order; the first scores comments
    stance_heads: dict[str, HeadSpec]
    #: ``<name>-<12 hex>``, see :func:`classifier.model.versions.compute_model_version`.
    model_version: str
    #: the comment head's log-offsets [S] for replies (:func:`reply_offsets_of`), or None
    reply_offsets: np.ndarray | None = None
    #: the model that scores toxicity from the comment alone (:meth:`attach_comment_model`)
    comment_model: BatchPredictor | None = None
    #: per toxicity label, the Platt scaling (a, b) of the logit fitted on news-comment
    #: dev data: p = sigmoid(a * logit + b); labels not named are left as the head gives them
    calibration: dict[str, tuple[float, float]] | None = None
    #: the span head's labels (empty: none), and the ``toxicity`` probability from which a
    #: word is in a span (tuned on ToxicSpans dev by ``threadguard calibrate``)
    span_labels: tuple[str, ...] = ()
    span_threshold: float = DEFAULT_SPAN_THRESHOLD
    #: the constructiveness head's labels (empty: none)
    constructive_labels: tuple[str, ...] = ()
    #: decode toxic spans (``threadguard score --no-spans`` turns it off)
    with_spans: bool = True
    #: per toxicity label, the score at which it holds a comment (the moderation policy's
    #: thresholds; :func:`~classifier.model.spans.explaining_spans`): a span is reported
    #: only for a label that holds. None: :data:`~classifier.model.spans.DEFAULT_HOLD` for
    #: every label the model predicts but spam.
    span_holds: dict[str, float] | None = None
    #: called in the model's thread before every forward pass (the hook's scheduler runs a
    #: small request's passes between a long one's: :class:`~classifier.moderation.batching.MicroBatcher`)
    before_pass: Callable[[], None] | None = None

    def __init__(
        self, *, batch_size: int = 32, max_batch_tokens: int | None = None, chunk_size: int = 4096
    ) -> None:
        if batch_size < 1 or chunk_size < 1:
            raise ValueError("batch_size and chunk_size must be positive")
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.chunk_size = chunk_size

    @property
    def input_encoder(self) -> InputEncoder:
        raise NotImplementedError

    def predict(self, items: Iterable[Mapping[str, Any] | Any]) -> list[Prediction]:
        """Predict for each item, returned in input order.

        An item is a mapping (or an object with attributes) with ``text`` and
        optionally ``target`` (the article or parent comment; empty or missing
        for no target) and ``context`` (e.g. the article title or the thread's
        source post).
        """
        items = list(items)
        stance, extra = self.score_arrays(items)
        labels = self.comment_model.constructive_labels if self.comment_model else ()
        holds = self.span_holds
        if holds is None:
            holds = {n: DEFAULT_HOLD for n in self.toxicity_labels if n != "spam"}
        out: list[Prediction] = []
        for i, (s, t) in enumerate(zip(stance.tolist(), extra.toxicity.tolist(), strict=True)):
            scores = dict(zip(self.stance_labels, s, strict=True))
            prediction: Prediction = {
                "stance": {"label": max(scores, key=scores.__getitem__), "scores": scores},
                "toxicity": dict(zip(self.toxicity_labels, t, strict=True)),
            }
            if extra.constructive is not None:
                row = extra.constructive[i].tolist()
                prediction["constructive"] = dict(zip(labels, row, strict=True))
            if extra.spans is not None:
                prediction["spans"] = explaining_spans(
                    extra.spans[i], item_field(items[i], "text"), prediction["toxicity"], holds
                )
            out.append(prediction)
        return out

    __call__ = predict

    def attach_comment_model(self, comment: BatchPredictor) -> None:
        """Score toxicity with ``comment`` (each comment alone, whole, in windows) instead
        of this model's own toxicity head; stance still comes from this model."""
        self.comment_model = comment
        self.toxicity_labels = comment.toxicity_labels
        self.model_version = f"{self.model_version}+{comment.model_version.rsplit('-', 1)[-1]}"

    def set_spans(self, on: bool) -> None:
        """Decode toxic spans (the default) or not, in this model and its comment model."""
        self.with_spans = on
        if self.comment_model is not None:
            self.comment_model.with_spans = on

    def toxicity_of_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Toxicity probabilities [N, T] of each text read alone and whole (see
        :meth:`comment_scores`)."""
        return self.comment_scores(texts, spans=False).toxicity

    def comment_scores(self, texts: Sequence[str], spans: bool = True) -> CommentScores:
        """Scores of each text read alone and whole, in windows (:meth:`InputEncoder.windows`):
        toxicity [N, T] (the maximum over windows, then :attr:`calibration`),
        constructiveness [N, C] (the maximum over windows) when the model has that head,
        and with ``spans`` (and :attr:`with_spans`) each text's toxic spans, from every
        token's highest span probability over the windows that read it. A model with a
        :attr:`comment_model` answers with that model's scores (its :attr:`toxicity_labels`
        are the comment model's), not with its own pair-pass head."""
        if self.comment_model is not None:
            return self.comment_model.comment_scores(texts, spans=spans)
        want_spans = spans and self.with_spans and bool(self.span_labels)
        scores, tokens = self._read_whole(list(texts), want_spans)
        if tokens is None:
            return scores
        found = [
            decode_spans(offsets, word_ids, probs, self.span_labels, self.span_threshold)
            for offsets, word_ids, probs in tokens
        ]
        return scores._replace(spans=found)

    def span_token_probabilities(self, texts: Sequence[str]) -> list[TokenSpanProbs]:
        """Each text's tokens (character offsets, word ids) and their span probabilities
        [n_tokens, K] (the highest over windows): what :meth:`comment_scores` decodes, for
        tuning :attr:`span_threshold` and for evaluation."""
        if not self.span_labels:
            raise ValueError("this model has no span head")
        return cast(list[TokenSpanProbs], self._read_whole(list(texts), True)[1])

    def _read_whole(
        self, texts: list[str], want_spans: bool
    ) -> tuple[CommentScores, list[TokenSpanProbs] | None]:
        windows = self.input_encoder.windows(texts, WINDOW_OVERLAP)
        owners = np.fromiter((i for i, _ in windows), dtype=np.int64, count=len(windows))
        encoded = [w for _, w in windows]
        probs = np.zeros((len(encoded), len(self.toxicity_labels)), dtype=np.float32)
        constructive = (
            np.zeros((len(encoded), len(self.constructive_labels)), dtype=np.float32)
            if self.constructive_labels
            else None
        )
        # per window: the span probabilities of its comment tokens, in order
        token_probs: list[np.ndarray] = [np.empty(0)] * len(encoded)
        for indices in self._batches(encoded):
            found = self._pass([encoded[i] for i in indices])
            probs[indices] = found.toxicity
            if constructive is not None and found.constructive is not None:
                constructive[indices] = found.constructive
            if want_spans and found.spans is not None:
                for row, i in enumerate(indices):
                    mask = np.asarray(encoded[i].comment_mask, dtype=bool)
                    # padding is on one side only: the window's tokens are a contiguous run
                    width = len(encoded[i].comment_mask)
                    window = found.spans[row]
                    own = (
                        window[:width]
                        if self.input_encoder.padding_side != "left"
                        else window[-width:]
                    )
                    token_probs[i] = own[mask]
        out = np.zeros((len(texts), len(self.toxicity_labels)), dtype=np.float32)
        np.maximum.at(out, owners, probs)
        by_text = None
        if constructive is not None:
            by_text = np.zeros((len(texts), constructive.shape[1]), dtype=np.float32)
            np.maximum.at(by_text, owners, constructive)
        tokens = self._token_probs(texts, owners, token_probs) if want_spans else None
        return CommentScores(self.calibrate(out), by_text, None), tokens

    def _token_probs(
        self, texts: Sequence[str], owners: np.ndarray, token_probs: Sequence[np.ndarray]
    ) -> list[TokenSpanProbs]:
        step = self.input_encoder.window_step(WINDOW_OVERLAP)
        alignment = self.input_encoder.alignment(texts)
        per_text = [
            np.zeros((len(offsets), len(self.span_labels)), dtype=np.float32)
            for offsets, _ in alignment
        ]
        seen = np.zeros(len(texts), dtype=np.int64)  # windows of each text so far
        for window, owner in enumerate(owners.tolist()):
            start = int(seen[owner]) * step
            seen[owner] += 1
            window_probs = token_probs[window]
            target = per_text[owner][start : start + len(window_probs)]
            np.maximum(target, window_probs[: len(target)], out=target)
        return [
            TokenSpanProbs(offsets, word_ids, probs)
            for (offsets, word_ids), probs in zip(alignment, per_text, strict=True)
        ]

    def calibrate(self, probs: np.ndarray) -> np.ndarray:
        """Apply :attr:`calibration` to toxicity probabilities [N, T] (``probs`` itself
        when there is none, else a copy)."""
        if not self.calibration:
            return probs
        out = probs.copy()
        for j, name in enumerate(self.toxicity_labels):
            if name in self.calibration:
                a, b = self.calibration[name]
                out[:, j] = sigmoid(a * logit(out[:, j]) + b)
        return out

    def predict_one(self, text: str, target: str = "", context: str = "") -> Prediction:
        """Predict for a single comment."""
        return self.predict([{"text": text, "target": target, "context": context}])[0]

    def head_for(self, corpus: str) -> str:
        """The stance head that was trained on ``corpus`` (the comment head if none was)."""
        found = (name for name, head in self.stance_heads.items() if corpus in head.corpora)
        return next(found, self.comment_head)

    @property
    def comment_head(self) -> str:
        """The stance head that scores comments (the first)."""
        return next(iter(self.stance_heads))

    def predict_arrays(
        self, items: Iterable[Mapping[str, Any] | Any], stance_head: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stance probabilities [N, S] and toxicity probabilities [N, T], in input order.

        Columns follow :attr:`stance_labels` / :attr:`toxicity_labels`; this is the
        one scoring path that :meth:`predict`, evaluation and training's dev checks
        all go through. ``stance_head`` names one of :attr:`stance_heads` to read
        the stance from (evaluation does, for a corpus of another label scheme;
        classes that head lacks get 0); default: the comment output. A model with
        :attr:`reply_offsets` has them applied here to the comment head's classes of
        every reply (:func:`is_reply`), in the comment output and the comment head's.
        """
        stance, extra = self.score_arrays(items, stance_head, spans=False)
        return stance, extra.toxicity

    def score_arrays(
        self,
        items: Iterable[Mapping[str, Any] | Any],
        stance_head: str | None = None,
        spans: bool = True,
    ) -> tuple[np.ndarray, CommentScores]:
        """:meth:`predict_arrays`'s stance, and the toxicity with what a comment model adds
        in the same pass: constructiveness [N, C] and, with ``spans`` (and
        :attr:`with_spans`), each comment's toxic spans (None where the model has none)."""
        items = list(items)
        head: int | None = None
        if stance_head is not None:
            if stance_head not in self.stance_heads:
                raise ValueError(
                    f"no stance head {stance_head!r}; this model has {list(self.stance_heads)}"
                )
            head = list(self.stance_heads).index(stance_head)
        stance = np.zeros((len(items), len(self.stance_labels)), dtype=np.float32)
        toxicity = np.zeros((len(items), len(self.toxicity_labels)), dtype=np.float32)
        constructive: list[np.ndarray] = []
        found_spans: list[list[Span]] | None = None
        for start in range(0, len(items), self.chunk_size):
            chunk = items[start : start + self.chunk_size]
            encoded = self._encode(chunk)
            for indices in self._batches(encoded):
                rows = [start + i for i in indices]
                found = self._pass([encoded[i] for i in indices])
                stance[rows] = found.stance if head is None else found.by_head[:, head]
                if self.comment_model is None:
                    toxicity[rows] = self.calibrate(found.toxicity)
            if self.comment_model is not None:
                texts = [item_field(i, "text") for i in chunk]
                scores = self.comment_model.comment_scores(texts, spans=spans)
                toxicity[start : start + len(chunk)] = scores.toxicity
                if scores.constructive is not None:
                    constructive.append(scores.constructive)
                if scores.spans is not None:
                    found_spans = (found_spans or []) + scores.spans
            if self.reply_offsets is not None and stance_head in (None, self.comment_head):
                replies = start + np.flatnonzero(reply_mask(chunk))
                classes = self.stance_heads[self.comment_head].classes
                columns = [self.stance_labels.index(c) for c in classes]
                stance[replies] = shift_classes(stance[replies], self.reply_offsets, columns)
        return stance, CommentScores(
            toxicity,
            np.concatenate(constructive) if constructive else None,
            found_spans,
        )

    def _encode(self, items: Sequence[Any]) -> list[EncodedInput]:
        for item in items:
            if not (isinstance(item, Mapping) and "text" in item) and not hasattr(item, "text"):
                raise ValueError(f"item {item!r} has no 'text'")
        return self.input_encoder.encode(
            [item_field(i, "target") for i in items],
            [item_field(i, "context") for i in items],
            [item_field(i, "text") for i in items],
        )

    def _batches(self, encoded: Sequence[EncodedInput]) -> list[list[int]]:
        """Indices of ``encoded`` grouped into batches of similar length."""
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            too_many = len(current) >= self.batch_size
            too_long = (
                self.max_batch_tokens is not None
                and current
                and (len(current) + 1) * len(encoded[i]) > self.max_batch_tokens
            )
            if too_many or too_long:
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def _pass(self, encoded: Sequence[EncodedInput]) -> BatchOutput:
        """One forward pass, after :attr:`before_pass`."""
        if self.before_pass is not None:
            self.before_pass()
        return self._run_batch(encoded)

    def _run_batch(self, encoded: Sequence[EncodedInput]) -> BatchOutput:
        """Probabilities of one batch (:class:`BatchOutput`)."""
        raise NotImplementedError


def probabilities(logits: Mapping[str, np.ndarray]) -> BatchOutput:
    """A batch's probabilities from its logits by output name (float32 numpy)."""
    spans = logits.get("span_logits")
    constructive = logits.get("constructive_logits")
    return BatchOutput(
        softmax(logits["stance_logits"]),
        sigmoid(logits["toxicity_logits"]),
        softmax(logits["stance_head_logits"]),
        sigmoid(spans) if spans is not None else None,
        sigmoid(constructive) if constructive is not None else None,
    )


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the maximum so that it cannot overflow."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return cast(np.ndarray, shifted / shifted.sum(axis=-1, keepdims=True))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """The logistic function, through tanh so that large logits raise no warning."""
    return cast(np.ndarray, 0.5 * (1.0 + np.tanh(0.5 * logits)))  # no overflow warnings


def logit(probs: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """The inverse of :func:`sigmoid`, in float64, with probabilities clipped to
    [eps, 1 - eps] so that 0 and 1 stay finite."""
    p = np.clip(np.asarray(probs, dtype=np.float64), eps, 1 - eps)
    return cast(np.ndarray, np.log(p / (1 - p)))
