"""Batched prediction with a loaded torch :class:`~classifier.model.network.ThreadguardModel`.

Inputs are tokenised in bulk, sorted by length so that each batch pads little
(:class:`~classifier.model.predictor.BatchPredictor`), run under ``torch.inference_mode()``
by a backend (:mod:`classifier.model.backends`), and returned in input order as plain
dicts keyed by label name. :func:`classifier.model.loading.load_predictor` picks this or
the torch-free ONNX predictor for a saved model; :func:`load_model` loads the torch model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
import transformers

from classifier.model.backends import Runner, make_runner, set_threads
from classifier.model.constants import model_dir, resolve_backend
from classifier.model.encoding import EncodedInput, InputEncoder
from classifier.model.network import ThreadguardModel
from classifier.model.predictor import BatchOutput, BatchPredictor, probabilities
from classifier.model.replies import reply_offsets_of, stance_heads_of
from classifier.model.versions import compute_model_version

logger = logging.getLogger(__name__)


def load_model(path: str | Path | None = None) -> ThreadguardModel:
    """Load a saved threadguard model directory (eval mode, CPU); ``None``: the shipped default."""
    folder = model_dir(path)
    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar per load
    return ThreadguardModel.from_pretrained(folder)


class Predictor(BatchPredictor):
    """Predicts stance and toxicity for many comments at once with the torch model.

    Args:
        model: a loaded model; it is put in eval mode and moved to ``device``.
        batch_size, max_batch_tokens, chunk_size: see
            :class:`~classifier.model.predictor.BatchPredictor`.
        device: ``"cpu"``, ``"cuda"``, ... .
        num_threads: if given, ``torch.set_num_threads(num_threads)`` (process-wide);
            by default torch's own setting is left alone.
        backend: how batches are run (:mod:`classifier.model.backends`): ``"torch"`` (the
            reference, float32), ``"int8"`` (a copy with dynamically quantized encoder
            Linear layers; CPU) or ``"onnx"`` (ONNX Runtime; needs ``onnxruntime``
            and ``onnx``), ``"onnx-int8"``, or ``"auto"``: the fastest safe one for
            ``device`` (:func:`classifier.model.constants.resolve_backend`). With ``"int8"``,
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
