"""Batched prediction in input order, whatever runs the batches.

:class:`BatchPredictor` tokenises inputs a chunk at a time, sorts them by length so that
each batch pads little, has a subclass run each batch (the torch
:class:`~classifier.model.torch_predictor.Predictor` or the ONNX
:class:`~classifier.model.onnx_predictor.OnnxPredictor`), and returns stance and
toxicity in input order. With a comment model (given at construction), toxicity,
constructiveness and toxic spans come from that model reading each comment alone and
whole, in overlapping windows (:meth:`BatchPredictor.comment_scores`), with the saved
calibration applied. A predictor is built whole and not changed after: one with other
:class:`PredictOptions` is derived (:meth:`BatchPredictor.with_options`).

This module imports neither torch nor transformers.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, TypedDict, TypeVar, cast

import numpy as np

from classifier.model.constants import WINDOW_OVERLAP, Backend
from classifier.model.encoding import EncodedInput, InputEncoder
from classifier.model.options import DEFAULT_OPTIONS, PredictOptions
from classifier.model.replies import (
    HeadSpec,
    item_field,
    reply_mask,
    shift_classes,
    stance_heads_of,
)
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
    constructiveness [B, C]; for a model that returns them, its encoder's token states
    [B, L, n_layers, D] (what the one-pass stance head reads)."""

    stance: np.ndarray
    toxicity: np.ndarray
    by_head: np.ndarray
    spans: np.ndarray | None = None
    constructive: np.ndarray | None = None
    states: np.ndarray | None = None


class TokenSpanProbs(NamedTuple):
    """One text's tokens: character offsets, word ids, span probabilities [n_tokens, K]."""

    offsets: list[tuple[int, int]]
    word_ids: list[int | None]
    probs: np.ndarray


class ItemScores(NamedTuple):
    """What :meth:`BatchPredictor.score_arrays` gives for items: stance [N, S], toxicity
    [N, T], and with a comment model that has those heads, constructiveness [N, C] and
    each comment's toxic spans (when asked for)."""

    stance: np.ndarray
    toxicity: np.ndarray
    constructive: np.ndarray | None
    spans: list[list[Span]] | None


class CommentScores(NamedTuple):
    """What the comment model gives for texts read alone and whole (see
    :meth:`BatchPredictor.comment_scores`)."""

    toxicity: np.ndarray
    constructive: np.ndarray | None
    spans: list[list[Span]] | None


_Derived = TypeVar("_Derived", bound="BatchPredictor")


class BatchPredictor:
    """Batched prediction in input order; subclasses run the encoded batches.

    Inputs are tokenised a chunk at a time, sorted by length so that each batch pads
    little, and returned in input order as plain dicts keyed by label name. Built whole
    (a subclass sets its own fields, then calls this constructor last) and immutable
    after: :meth:`with_options` derives a predictor with other options, sharing the
    loaded model; setting an attribute raises ``AttributeError``.

    Args:
        backend: what runs the batches (:mod:`classifier.model.backends`).
        model_version: ``<name>-<12 hex>``, see
            :func:`classifier.model.versions.compute_model_version`.
        stance_labels, toxicity_labels: the model's classes, in its logit order.
        stance_heads: stance head name → what it was trained on, in logit order; the
            first scores comments (default: one head over every stance label).
        reply_offsets: the comment head's log-offsets [S] for replies
            (:func:`~classifier.model.replies.reply_offsets_of`), or None.
        span_labels: the span head's labels (empty: none).
        constructive_labels: the constructiveness head's labels (empty: none).
        calibration: per toxicity label, the Platt scaling (a, b) of the logit fitted on
            news-comment dev data: p = sigmoid(a * logit + b); labels not named are left as
            the head gives them.
        span_threshold: the ``toxicity`` probability from which a word is in a span (tuned
            on ToxicSpans dev by ``threadguard calibrate``).
        comment_model: the model that scores toxicity, constructiveness and spans from each
            comment alone, whole, in windows, instead of this model's own toxicity head;
            stance still comes from this model. :attr:`toxicity_labels` are then the
            comment model's, and :attr:`model_version` names both.
        options: how it runs (:class:`PredictOptions`); a comment model runs with the same.
    """

    backend: Backend
    model_version: str
    stance_labels: tuple[str, ...]
    toxicity_labels: tuple[str, ...]
    stance_heads: dict[str, HeadSpec]
    reply_offsets: np.ndarray | None
    span_labels: tuple[str, ...]
    constructive_labels: tuple[str, ...]
    calibration: dict[str, tuple[float, float]] | None
    span_threshold: float
    comment_model: BatchPredictor | None
    options: PredictOptions

    def __init__(
        self,
        *,
        backend: Backend,
        model_version: str,
        stance_labels: Sequence[str],
        toxicity_labels: Sequence[str],
        stance_heads: Mapping[str, HeadSpec] | None = None,
        reply_offsets: np.ndarray | None = None,
        span_labels: Sequence[str] = (),
        constructive_labels: Sequence[str] = (),
        calibration: Mapping[str, tuple[float, float]] | None = None,
        span_threshold: float = DEFAULT_SPAN_THRESHOLD,
        comment_model: BatchPredictor | None = None,
        options: PredictOptions = DEFAULT_OPTIONS,
    ) -> None:
        self.backend = backend
        self.stance_labels = tuple(stance_labels)
        self.stance_heads = dict(
            stance_heads or stance_heads_of({"stance_labels": self.stance_labels})
        )
        self.reply_offsets = reply_offsets
        self.span_labels = tuple(span_labels)
        self.constructive_labels = tuple(constructive_labels)
        self.calibration = dict(calibration) if calibration else None
        self.span_threshold = span_threshold
        if comment_model is not None:
            comment_model = comment_model._derive(options)
            toxicity_labels = comment_model.toxicity_labels
            model_version = f"{model_version}+{comment_model.model_version.rsplit('-', 1)[-1]}"
        self.comment_model = comment_model
        self.toxicity_labels = tuple(toxicity_labels)
        self.model_version = model_version
        self.options = options
        self._frozen = True

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen"):
            raise AttributeError(
                f"{type(self).__name__} is immutable after construction: cannot set {name!r}; "
                "derive one with with_options(...) or load another"
            )
        super().__setattr__(name, value)

    def with_options(self: _Derived, **changes: Any) -> _Derived:
        """A predictor like this one, with the :class:`PredictOptions` fields in
        ``changes`` replaced (in its comment model too); it shares the loaded model
        (weights, sessions, tokenizer), so deriving one costs no load."""
        return self._derive(dataclasses.replace(self.options, **changes))

    def _derive(self: _Derived, options: PredictOptions) -> _Derived:
        """A shallow copy that runs with ``options``, and so does its comment model."""
        derived = copy.copy(self)
        object.__setattr__(derived, "options", options)
        if self.comment_model is not None:
            object.__setattr__(derived, "comment_model", self.comment_model._derive(options))
        return derived

    @property
    def input_encoder(self) -> InputEncoder:
        raise NotImplementedError

    def predict(self, items: Iterable[Mapping[str, Any] | Any]) -> list[Prediction]:
        """Predict for each item, returned in input order: the one way in for rows.

        An item is a mapping (or an object with attributes) with ``text`` and
        optionally ``target`` (the article or parent comment; empty or missing
        for no target) and ``context`` (e.g. the article title or the thread's
        source post). Spans come with :attr:`PredictOptions.spans`, for the labels that
        hold (:attr:`PredictOptions.span_holds`).
        """
        items = list(items)
        found = self.score_arrays(items, spans=self.options.spans)
        labels = self.comment_model.constructive_labels if self.comment_model else ()
        holds = self.options.span_holds
        if holds is None:
            holds = {n: DEFAULT_HOLD for n in self.toxicity_labels if n != "spam"}
        out: list[Prediction] = []
        rows = zip(found.stance.tolist(), found.toxicity.tolist(), strict=True)
        for i, (s, t) in enumerate(rows):
            scores = dict(zip(self.stance_labels, s, strict=True))
            prediction: Prediction = {
                "stance": {"label": max(scores, key=scores.__getitem__), "scores": scores},
                "toxicity": dict(zip(self.toxicity_labels, t, strict=True)),
            }
            if found.constructive is not None:
                row = found.constructive[i].tolist()
                prediction["constructive"] = dict(zip(labels, row, strict=True))
            if found.spans is not None:
                prediction["spans"] = explaining_spans(
                    found.spans[i], item_field(items[i], "text"), prediction["toxicity"], holds
                )
            out.append(prediction)
        return out

    def comment_scores(self, texts: Sequence[str], spans: bool = False) -> CommentScores:
        """Scores of each text read alone and whole, in windows (:meth:`InputEncoder.windows`):
        toxicity [N, T] (the maximum over windows, then :attr:`calibration`),
        constructiveness [N, C] (the maximum over windows) when the model has that head,
        and with ``spans`` each text's toxic spans, from every token's highest span
        probability over the windows that read it. A model with a :attr:`comment_model`
        answers with that model's scores (its :attr:`toxicity_labels` are the comment
        model's), not with its own pair-pass head."""
        if self.comment_model is not None:
            return self.comment_model.comment_scores(texts, spans=spans)
        return self._comment_read(texts, spans, want_states=False)[0]

    def span_token_probabilities(self, texts: Sequence[str]) -> list[TokenSpanProbs]:
        """Each text's tokens (character offsets, word ids) and their span probabilities
        [n_tokens, K] (the highest over windows): what :meth:`comment_scores` decodes, for
        tuning :attr:`span_threshold` and for evaluation."""
        if not self.span_labels:
            raise ValueError("this model has no span head")
        return cast(list[TokenSpanProbs], self._read_whole(list(texts), True)[1])

    def comment_pass(
        self, texts: Sequence[str], spans: bool = False
    ) -> tuple[CommentScores, list[np.ndarray]]:
        """:meth:`comment_scores` and, from the same pass, each text's token states of
        its first window [n_tokens, n_layers, D] (special tokens included): what the
        one-pass stance head reads of a comment. Needs a model that returns its states
        (:attr:`~classifier.model.config.ModelConfig.state_layers`)."""
        scores, states = self._comment_read(texts, spans, want_states=True)
        return scores, cast(list[np.ndarray], states)

    def _comment_read(
        self, texts: Sequence[str], spans: bool, want_states: bool
    ) -> tuple[CommentScores, list[np.ndarray] | None]:
        """:meth:`_read_whole` with the spans decoded (when asked for and the model has
        them): what :meth:`comment_scores` and :meth:`comment_pass` give."""
        want_spans = spans and bool(self.span_labels)
        scores, tokens, states = self._read_whole(list(texts), want_spans, want_states)
        if tokens is not None:
            found = [
                decode_spans(offsets, word_ids, probs, self.span_labels, self.span_threshold)
                for offsets, word_ids, probs in tokens
            ]
            scores = scores._replace(spans=found)
        return scores, states

    def text_states(self, texts: Sequence[str], max_length: int) -> list[np.ndarray]:
        """Each text's token states read alone and cut at ``max_length`` tokens (special
        tokens included) [n_tokens, n_layers, D]: how the one-pass stance head reads a
        target or a context. A text short enough for one such window gets exactly the
        states of its :meth:`comment_pass` (the same input: :meth:`InputEncoder.encode`
        with no target is a text's first window)."""
        texts = list(texts)
        encoded = self.input_encoder.truncated(max_length).encode([""] * len(texts), None, texts)
        out: list[np.ndarray] = [np.empty(0)] * len(encoded)
        for indices in self._batches(encoded):
            states = _states_of(self._pass([encoded[i] for i in indices]))
            for row, i in enumerate(indices):
                out[i] = self._own_tokens(states[row], len(encoded[i]))
        return out

    def _own_tokens(self, rows: np.ndarray, width: int) -> np.ndarray:
        """One example's ``width`` positions of a padded batch row."""
        return rows[:width] if self.input_encoder.padding_side != "left" else rows[-width:]

    def _read_whole(
        self, texts: list[str], want_spans: bool, want_states: bool = False
    ) -> tuple[CommentScores, list[TokenSpanProbs] | None, list[np.ndarray] | None]:
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
        # each text's first window's token states (windows come in text order)
        first = np.searchsorted(owners, np.arange(len(texts)))
        states: list[np.ndarray] = [np.empty(0)] * len(texts)
        for indices in self._batches(encoded):
            found = self._pass([encoded[i] for i in indices])
            if want_states:
                batch_states = _states_of(found)
                for row, i in enumerate(indices):
                    if first[owners[i]] == i:
                        states[owners[i]] = self._own_tokens(batch_states[row], len(encoded[i]))
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
        found_states = states if want_states else None
        return CommentScores(self._calibrate(out), by_text, None), tokens, found_states

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

    def _calibrate(self, probs: np.ndarray) -> np.ndarray:
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

    def head_for(self, corpus: str) -> str:
        """The stance head that was trained on ``corpus`` (the comment head if none was)."""
        found = (name for name, head in self.stance_heads.items() if corpus in head.corpora)
        return next(found, self.comment_head)

    @property
    def comment_head(self) -> str:
        """The stance head that scores comments (the first)."""
        return next(iter(self.stance_heads))

    def score_arrays(
        self,
        items: Iterable[Mapping[str, Any] | Any],
        stance_head: str | None = None,
        spans: bool = False,
    ) -> ItemScores:
        """Every item's scores as arrays, in input order: the one scoring path that
        :meth:`predict`, evaluation and training's dev checks all go through.

        Stance [N, S] and toxicity [N, T] (columns follow :attr:`stance_labels` /
        :attr:`toxicity_labels`), and what a comment model adds in the same pass:
        constructiveness [N, C] and, with ``spans``, each comment's toxic spans (None
        where the model has none). ``stance_head`` names one of :attr:`stance_heads` to
        read the stance from (evaluation does, for a corpus of another label scheme;
        classes that head lacks get 0); default: the comment output. A model with
        :attr:`reply_offsets` has them applied here to the comment head's classes of
        every reply (:func:`~classifier.model.replies.reply_mask`), in the comment output
        and the comment head's.
        """
        items = list(items)
        head = self._head_index(stance_head)
        stance = np.zeros((len(items), len(self.stance_labels)), dtype=np.float32)
        toxicity = np.zeros((len(items), len(self.toxicity_labels)), dtype=np.float32)
        constructive: list[np.ndarray] = []
        found_spans: list[list[Span]] | None = None
        chunk_size = self.options.chunk_size
        for start in range(0, len(items), chunk_size):
            chunk = items[start : start + chunk_size]
            encoded = self._encode(chunk)
            for indices in self._batches(encoded):
                rows = [start + i for i in indices]
                found = self._pass([encoded[i] for i in indices])
                stance[rows] = found.stance if head is None else found.by_head[:, head]
                if self.comment_model is None:
                    toxicity[rows] = self._calibrate(found.toxicity)
            if self.comment_model is not None:
                texts = [item_field(i, "text") for i in chunk]
                scores = self.comment_model.comment_scores(texts, spans=spans)
                toxicity[start : start + len(chunk)] = scores.toxicity
                if scores.constructive is not None:
                    constructive.append(scores.constructive)
                if scores.spans is not None:
                    found_spans = (found_spans or []) + scores.spans
            self._shift_replies(stance, chunk, start, stance_head)
        return ItemScores(
            stance,
            toxicity,
            np.concatenate(constructive) if constructive else None,
            found_spans,
        )

    def _head_index(self, stance_head: str | None) -> int | None:
        """The position of stance head ``stance_head`` (None: the comment output)."""
        if stance_head is None:
            return None
        if stance_head not in self.stance_heads:
            raise ValueError(
                f"no stance head {stance_head!r}; this model has {list(self.stance_heads)}"
            )
        return list(self.stance_heads).index(stance_head)

    def _shift_replies(
        self, stance: np.ndarray, chunk: Sequence[Any], start: int, stance_head: str | None
    ) -> None:
        """Apply :attr:`reply_offsets` in place to the rows of ``stance`` that are the
        replies of ``chunk`` (which starts at row ``start``), for the comment output."""
        if self.reply_offsets is None or stance_head not in (None, self.comment_head):
            return
        replies = start + np.flatnonzero(reply_mask(chunk))
        classes = self.stance_heads[self.comment_head].classes
        columns = [self.stance_labels.index(c) for c in classes]
        stance[replies] = shift_classes(stance[replies], self.reply_offsets, columns)

    @staticmethod
    def _check_item(item: Any) -> None:
        if not (isinstance(item, Mapping) and "text" in item) and not hasattr(item, "text"):
            raise ValueError(f"item {item!r} has no 'text'")

    def _encode(self, items: Sequence[Any]) -> list[EncodedInput]:
        for item in items:
            self._check_item(item)
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
            too_many = len(current) >= self.options.batch_size
            limit = self.options.max_batch_tokens
            too_long = (
                limit is not None and current and (len(current) + 1) * len(encoded[i]) > limit
            )
            if too_many or too_long:
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def _pass(self, encoded: Sequence[EncodedInput]) -> BatchOutput:
        """One forward pass, after :attr:`PredictOptions.before_pass`."""
        if self.options.before_pass is not None:
            self.options.before_pass()
        return self._run_batch(encoded)

    def _run_batch(self, encoded: Sequence[EncodedInput]) -> BatchOutput:
        """Probabilities of one batch (:class:`BatchOutput`)."""
        raise NotImplementedError


def _states_of(found: BatchOutput) -> np.ndarray:
    """A batch's token states, or why there are none."""
    if found.states is None:
        raise ValueError("this model returns no token states (its config names no state_layers)")
    return found.states


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
        logits.get("token_states"),
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
