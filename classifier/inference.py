"""Batched prediction with a loaded torch :class:`~classifier.modeling.ThreadguardModel`.

Inputs are tokenised in bulk by the fast tokenizer, sorted by length so that each
batch pads little (:class:`classifier.runtime.BatchPredictor`), run under
``torch.inference_mode()`` by a backend (:mod:`classifier.backends`), and returned
in input order as plain dicts keyed by label name. :func:`classifier.runtime.load_predictor`
picks this or the torch-free ONNX predictor for a saved model.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import transformers

from classifier.backends import Runner, make_runner, set_threads
from classifier.encoding import EncodedInput, InputEncoder
from classifier.modeling import ThreadguardModel
from classifier.runtime import (
    DEFAULT_MODEL_DIR,
    BatchOutput,
    BatchPredictor,
    NoDefaultModelError,
    Prediction,
    StancePrediction,
    model_dir,
    probabilities,
    reply_offsets_of,
    resolve_backend,
    stance_heads_of,
    version_name,
)

logger = logging.getLogger(__name__)


def load_model(path: str | Path | None = None) -> ThreadguardModel:
    """Load a saved threadguard model directory (eval mode, CPU); ``None``: the shipped default."""
    folder = model_dir(path)
    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar per load
    return ThreadguardModel.from_pretrained(folder)


def version_digest(model: ThreadguardModel) -> str:
    """12 hex digits of a hash of the model's config, training config, stance offsets
    (reply offsets change its output without changing a weight) and heads."""
    digest = hashlib.sha256()
    digest.update(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    digest.update(json.dumps(model.training_config, sort_keys=True, default=str).encode())
    if model.stance_offsets:  # absent from older models, whose versions stay as they were
        digest.update(json.dumps(model.stance_offsets, sort_keys=True).encode())
    for head in (model.stance_head, model.toxicity_head):
        for key, tensor in sorted(head.state_dict().items()):
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(tensor.detach().float().cpu().numpy()).tobytes())
    return digest.hexdigest()[:12]


def compute_model_version(model: ThreadguardModel, path: str | Path | None = None) -> str:
    """``<name>-<12 hex>``: the model folder's name and :func:`version_digest`."""
    return f"{version_name(path, model.training_config)}-{version_digest(model)}"


class Predictor(BatchPredictor):
    """Predicts stance and toxicity for many comments at once with the torch model.

    Args:
        model: a loaded model; it is put in eval mode and moved to ``device``.
        batch_size, max_batch_tokens, chunk_size: see
            :class:`~classifier.runtime.BatchPredictor`.
        device: ``"cpu"``, ``"cuda"``, ... .
        num_threads: if given, ``torch.set_num_threads(num_threads)`` (process-wide);
            by default torch's own setting is left alone.
        backend: how batches are run (:mod:`classifier.backends`): ``"torch"`` (the
            reference, float32), ``"int8"`` (a copy with dynamically quantized encoder
            Linear layers; CPU) or ``"onnx"`` (ONNX Runtime; needs ``onnxruntime``
            and ``onnx``), ``"onnx-int8"``, or ``"auto"``: the fastest safe one for
            ``device`` (:func:`classifier.runtime.resolve_backend`). With ``"int8"``,
            :attr:`model` is the quantized copy; :attr:`backend` is the one in use.
        model_version: what rows name the model; default :func:`compute_model_version`.
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
        model_version: str | None = None,
    ) -> None:
        super().__init__(
            batch_size=batch_size, max_batch_tokens=max_batch_tokens, chunk_size=chunk_size
        )
        set_threads(num_threads)
        self.device = torch.device(device)
        self.backend = resolve_backend(backend, self.device)
        self.model_version = model_version or compute_model_version(model)
        self._run: Runner
        self.model, self._run = make_runner(
            model.to(self.device).eval(), self.backend, self.device, num_threads
        )
        self.stance_labels = tuple(self.model.stance_labels)
        self.toxicity_labels = tuple(self.model.toxicity_labels)
        self.stance_heads = stance_heads_of(model.config.to_dict())
        self.reply_offsets = reply_offsets_of(
            model.stance_offsets, self.stance_labels, self.stance_heads
        )
        self.span_labels = tuple(model.config.span_labels)
        self.constructive_labels = tuple(model.config.constructive_labels)

    @property
    def input_encoder(self) -> InputEncoder:
        return self.model.input_encoder

    def _run_batch(self, encoded: Sequence[EncodedInput]) -> BatchOutput:
        with torch.inference_mode():
            found = self._run(self.input_encoder.collate(encoded))
            return probabilities({k: v.float().cpu().numpy() for k, v in found.items()})


__all__ = [
    "DEFAULT_MODEL_DIR",
    "NoDefaultModelError",
    "Prediction",
    "Predictor",
    "StancePrediction",
    "compute_model_version",
    "load_model",
    "version_digest",
]
