"""Batched prediction with a loaded torch :class:`~classifier.model.network.ThreadguardModel`.

Inputs are tokenised in bulk, sorted by length so that each batch pads little
(:class:`~classifier.model.predictor.BatchPredictor`), run under ``torch.inference_mode()``
by a backend (:mod:`classifier.model.backends`), and returned in input order as plain
dicts keyed by label name. :func:`classifier.model.loading.load_predictor` picks this or
the torch-free ONNX predictor for a saved model; :func:`load_model` loads the torch model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import transformers

from classifier.model.backends import Runner, make_runner, set_threads
from classifier.model.constants import model_dir, resolve_backend
from classifier.model.encoding import EncodedInput, InputEncoder
from classifier.model.network import ThreadguardModel
from classifier.model.predictor import (
    DEFAULT_OPTIONS,
    BatchOutput,
    BatchPredictor,
    PredictOptions,
    probabilities,
)
from classifier.model.replies import reply_offsets_of, stance_heads_of
from classifier.model.spans import DEFAULT_SPAN_THRESHOLD
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
        calibration, span_threshold, comment_model, options: see
            :class:`~classifier.model.predictor.BatchPredictor`.
    """

    def __init__(
        self,
        model: ThreadguardModel,
        *,
        device: str | torch.device = "cpu",
        num_threads: int | None = None,
        backend: str = "torch",
        model_version: str | None = None,
        calibration: Mapping[str, tuple[float, float]] | None = None,
        span_threshold: float = DEFAULT_SPAN_THRESHOLD,
        comment_model: BatchPredictor | None = None,
        options: PredictOptions = DEFAULT_OPTIONS,
    ) -> None:
        set_threads(num_threads)
        self.device = torch.device(device)
        chosen = resolve_backend(backend, self.device)
        self._run: Runner
        self.model, self._run = make_runner(
            model.to(self.device).eval(), chosen, self.device, num_threads
        )
        stance_labels = tuple(self.model.stance_labels)
        heads = stance_heads_of(model.config.to_dict())
        super().__init__(
            backend=chosen,
            model_version=model_version or compute_model_version(model),
            stance_labels=stance_labels,
            toxicity_labels=self.model.toxicity_labels,
            stance_heads=heads,
            reply_offsets=reply_offsets_of(model.stance_offsets, stance_labels, heads),
            span_labels=model.config.span_labels,
            constructive_labels=model.config.constructive_labels,
            calibration=calibration,
            span_threshold=span_threshold,
            comment_model=comment_model,
            options=options,
        )

    @property
    def input_encoder(self) -> InputEncoder:
        return self.model.input_encoder

    def _run_batch(self, encoded: Sequence[EncodedInput]) -> BatchOutput:
        with torch.inference_mode():
            found = self._run(self.input_encoder.collate(encoded))
            return probabilities({k: v.float().cpu().numpy() for k, v in found.items()})
