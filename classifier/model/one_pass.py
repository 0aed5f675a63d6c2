"""The one-pass model: one encoder pass per comment, stance from a head over the states.

A one-pass model folder holds the comment model (its ``comment/`` folder, whose config names
the encoder layers it returns states of) and the stance head beside it
(:data:`HEAD_CONFIG_FILE`, :data:`HEAD_WEIGHTS_FILE`, see
:mod:`classifier.model.stance_head`). :class:`OnePassPredictor` reads each comment once,
in windows, for toxicity, constructiveness and spans, and keeps its first window's token
states; each distinct target and context (the article's title and lead, a parent comment,
a thread's title) is read once per call, alone, cut at the head's ``target_tokens``, and
a parent that is itself a comment of the call and fits that cut costs nothing (its states
are the ones its own pass gave); recent targets are kept between calls, so the comments of
one thread sent one by one (the hook) read the article once. The head attends from the
comment's states to the target's and gives every stance head's logits.

This module imports neither torch nor transformers: the head runs on ONNX Runtime for
the ``onnx`` backends (exported once, through torch, into the export cache) and in torch
for the torch backends.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from classifier.model.config_head import (
    HEAD_INPUTS,
    HEAD_WEIGHTS_FILE,
    StanceHeadConfig,
    read_head_meta,
)
from classifier.model.constants import HEAD_CONFIG_FILE, Backend, cache_folder
from classifier.model.encoding import InputEncoder
from classifier.model.options import DEFAULT_OPTIONS, PredictOptions
from classifier.model.predictor import BatchOutput, BatchPredictor, ItemScores, softmax
from classifier.model.replies import HeadSpec, item_field, reply_offsets_of, stance_heads_of
from classifier.model.spans import Span
from classifier.model.versions import version_name

logger = logging.getLogger(__name__)

#: Comments whose token states are held at once (up to 256 tokens x layers x 1.5 KB each):
#: a bulk run's 4,096-comment chunks would hold gigabytes of them.
STATES_CHUNK = 256
#: Token states a predictor keeps between calls, in tokens (targets, contexts and the
#: comments short enough to be a reply's target: ~3 KB a token and layer in float32).
TARGET_CACHE_TOKENS = 8192


def is_one_pass(folder: Path) -> bool:
    """Whether a model folder holds a one-pass model (a stance head beside its comment
    model)."""
    return (folder / HEAD_CONFIG_FILE).is_file()


class HeadRunner(Protocol):
    """Runs the stance head on padded inputs (:data:`HEAD_INPUTS`); returns the comment
    stance logits [B, S] and every head's [B, H, S]."""

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]: ...


def head_digest(folder: Path) -> str:
    """12 hex digits of the head's files: its part of the model version and its export key."""
    digest = hashlib.sha256()
    for name in (HEAD_CONFIG_FILE, HEAD_WEIGHTS_FILE):
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:12]


class StateCache:
    """Token states by text, least recently used out first once over ``max_tokens``;
    thread-safe (the hook's worker and a caller may score at once)."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self._states: OrderedDict[str, np.ndarray] = OrderedDict()
        self._tokens = 0
        self._lock = threading.Lock()

    def get(self, text: str) -> np.ndarray | None:
        with self._lock:
            found = self._states.get(text)
            if found is not None:
                self._states.move_to_end(text)
            return found

    def put(self, pairs: Iterable[tuple[str, np.ndarray]]) -> None:
        with self._lock:
            for text, states in pairs:
                if text in self._states:
                    self._states.move_to_end(text)
                    continue
                self._states[text] = states
                self._tokens += len(states)
            while self._tokens > self.max_tokens and self._states:
                self._tokens -= len(self._states.popitem(last=False)[1])


class OnnxHeadRunner:
    """The head on ONNX Runtime: one intra-op thread with no spinning, so that it does
    not compete with the encoder session's threads for the cores."""

    def __init__(self, path: Path) -> None:
        from classifier.model.onnx_session import OnnxSession

        self.session = OnnxSession(path, 1, spinning=False)

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        found = self.session.run(inputs)
        return found["stance_logits"], found["stance_head_logits"]


def onnx_head(folder: Path, cache: Path, digest: str) -> OnnxHeadRunner:
    """The head's ONNX runner, exported (through torch) into ``cache`` on first use, under
    the head's :func:`head_digest`."""
    path = cache / f"stance-head-{digest}.onnx"
    if not path.is_file():
        from classifier.model.stance_head import export_head, load_head

        logger.info("exporting the stance head of %s to ONNX (once)", folder)
        cache.mkdir(parents=True, exist_ok=True)
        export_head(load_head(folder), path)
    return OnnxHeadRunner(path)


class OnePassPredictor(BatchPredictor):
    """Scores with one encoder pass per comment and a stance head over its states.

    Args:
        comment_model: the comment model's predictor (any backend); it must return its
            token states (:attr:`~classifier.model.config.ModelConfig.state_layers`).
        head: what runs the stance head (:class:`HeadRunner`).
        head_config: the head's settings (its ``target_tokens`` above all).
        model_version, stance_labels, stance_heads, reply_offsets, options: see
            :class:`BatchPredictor`.
    """

    def __init__(
        self,
        comment_model: BatchPredictor,
        head: HeadRunner,
        head_config: StanceHeadConfig,
        *,
        model_version: str,
        stance_labels: Sequence[str],
        stance_heads: Mapping[str, HeadSpec],
        reply_offsets: np.ndarray | None = None,
        options: PredictOptions = DEFAULT_OPTIONS,
    ) -> None:
        self.head = head
        self.head_config = head_config
        self._cache = StateCache(TARGET_CACHE_TOKENS)  # shared by derived predictors
        super().__init__(
            backend=comment_model.backend,
            model_version=model_version,
            stance_labels=stance_labels,
            toxicity_labels=comment_model.toxicity_labels,
            stance_heads=stance_heads,
            reply_offsets=reply_offsets,
            comment_model=comment_model,
            options=options,
        )

    @property
    def input_encoder(self) -> InputEncoder:
        return cast(BatchPredictor, self.comment_model).input_encoder

    def _run_batch(self, encoded: Sequence[Any]) -> BatchOutput:
        raise TypeError("a one-pass model has no pair pass: score with score_arrays or predict")

    # ------------------------------------------------------------------ targets

    def _target_states(
        self, texts: Iterable[str], known: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """States of each distinct non-empty text: from ``known`` (this call's comments),
        the cache, or one pass over the rest. What was read, and this call's comments that
        could be a later reply's target, are kept for later calls."""
        found: dict[str, np.ndarray] = {}
        missing: list[str] = []
        for text in dict.fromkeys(t for t in texts if t):
            if text in known:
                found[text] = known[text]
            else:
                cached = self._cache.get(text)
                if cached is None:
                    missing.append(text)
                else:
                    found[text] = cached
        if missing:
            comment_model = cast(BatchPredictor, self.comment_model)
            read = comment_model.text_states(missing, self.head_config.target_tokens)
            found.update(zip(missing, read, strict=True))
        self._cache.put([*known.items(), *((t, found[t]) for t in missing)])
        return found

    # ------------------------------------------------------------------ scoring

    def score_arrays(
        self,
        items: Iterable[Mapping[str, Any] | Any],
        stance_head: str | None = None,
        spans: bool = False,
    ) -> ItemScores:
        """As :meth:`BatchPredictor.score_arrays`, with one encoder pass per comment."""
        items = list(items)
        head = self._head_index(stance_head)
        comment_model = cast(BatchPredictor, self.comment_model)
        stance = np.zeros((len(items), len(self.stance_labels)), dtype=np.float32)
        toxicity = np.zeros((len(items), len(self.toxicity_labels)), dtype=np.float32)
        constructive: list[np.ndarray] = []
        found_spans: list[list[Span]] | None = None
        limit = self.head_config.target_tokens
        step = min(self.options.chunk_size, STATES_CHUNK)
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            for item in chunk:
                self._check_item(item)
            texts = [str(item_field(i, "text")) for i in chunk]
            targets = [_clean(item_field(i, "target")) for i in chunk]
            contexts = [_clean(item_field(i, "context")) for i in chunk]
            scores, states = comment_model.comment_pass(texts, spans=spans)
            toxicity[start : start + len(chunk)] = scores.toxicity
            if scores.constructive is not None:
                constructive.append(scores.constructive)
            if scores.spans is not None:
                found_spans = (found_spans or []) + scores.spans
            # a comment that fits the target cut was read exactly as a target would be
            known = {t: s for t, s in zip(texts, states, strict=True) if len(s) <= limit}
            by_text = self._target_states([*targets, *contexts], known)
            comment_logits, by_head = self._run_head(states, targets, contexts, by_text)
            rows = slice(start, start + len(chunk))
            stance[rows] = softmax(comment_logits) if head is None else softmax(by_head[:, head])
            self._shift_replies(stance, chunk, start, stance_head)
        return ItemScores(
            stance,
            toxicity,
            np.concatenate(constructive) if constructive else None,
            found_spans,
        )

    def _run_head(
        self,
        states: Sequence[np.ndarray],
        targets: Sequence[str],
        contexts: Sequence[str],
        by_text: Mapping[str, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """The head's logits for every comment, in batches of similar length."""
        n = len(states)
        order = sorted(range(n), key=lambda i: min(len(states[i]), self.head_config.comment_tokens))
        size = self.options.batch_size
        comment_out = np.zeros((n, len(self.stance_labels)), dtype=np.float32)
        heads_out = np.zeros((n, len(self.stance_heads), len(self.stance_labels)), np.float32)
        for s in range(0, n, size):
            rows = order[s : s + size]
            c, cm = pad_states([states[i][: self.head_config.comment_tokens] for i in rows])
            t, tm = pad_states([by_text.get(targets[i]) for i in rows], like=states[rows[0]])
            x, xm = pad_states([by_text.get(contexts[i]) for i in rows], like=states[rows[0]])
            inputs = dict(zip(HEAD_INPUTS, (c, cm, t, tm, x, xm), strict=True))
            comment_logits, by_head = self.head(inputs)
            comment_out[rows] = comment_logits
            heads_out[rows] = by_head
        return comment_out, heads_out


def _clean(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if text.strip() else ""


def pad_states(
    arrays: Sequence[np.ndarray | None], like: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad states [L_i, n_layers, D] into [B, max(1, L), n_layers, D] and a mask;
    None is an empty sequence (shaped like ``like``)."""
    shape = next((a.shape[1:] for a in arrays if a is not None), None)
    if shape is None:
        shape = cast(np.ndarray, like).shape[1:]
    width = max([1] + [len(a) for a in arrays if a is not None])
    out = np.zeros((len(arrays), width, *shape), dtype=np.float32)
    mask = np.zeros((len(arrays), width), dtype=np.float32)
    for i, a in enumerate(arrays):
        if a is not None and len(a):
            out[i, : len(a)] = a
            mask[i, : len(a)] = 1.0
    return out, mask


def load_one_pass(
    folder: Path,
    comment_model: BatchPredictor,
    *,
    backend: Backend,
    cache_dir: str | Path | None = None,
    options: PredictOptions = DEFAULT_OPTIONS,
) -> OnePassPredictor:
    """A one-pass model folder's predictor over its loaded ``comment_model`` (``cache_dir``:
    where the head's ONNX export goes, default :func:`default_cache_dir`)."""
    meta = read_head_meta(folder)
    labels = tuple(meta["stance_labels"])
    heads = stance_heads_of(meta)  # its stance_labels and stance_heads, as a model config's
    digest = head_digest(folder)
    runner: HeadRunner
    if backend in ("onnx", "onnx-int8"):
        runner = onnx_head(folder, cache_folder(cache_dir), digest)
    else:
        from classifier.model.stance_head import TorchHeadRunner, load_head

        runner = TorchHeadRunner(load_head(folder))
    return OnePassPredictor(
        comment_model,
        runner,
        StanceHeadConfig.from_dict(meta["head"]),
        model_version=f"{version_name(folder, None)}-{digest}",
        stance_labels=labels,
        stance_heads=heads,
        reply_offsets=reply_offsets_of(meta.get("stance_offsets"), labels, heads),
        options=options,
    )


__all__ = [
    "HEAD_CONFIG_FILE",
    "HEAD_WEIGHTS_FILE",
    "OnePassPredictor",
    "is_one_pass",
    "load_one_pass",
]
