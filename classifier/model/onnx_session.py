"""An ONNX Runtime CPU session over an exported threadguard model: numpy in, logits out.

Shared by the torch-free :class:`~classifier.model.onnx_predictor.OnnxPredictor` and the
torch-side :class:`~classifier.model.backends.OnnxRunner`. Imports onnxruntime only when a
session is made.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from classifier.model.constants import ONNX_MISSING, BackendUnavailableError


def require_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or :class:`BackendUnavailableError` saying how to get it."""
    try:
        import onnxruntime
    except ImportError as err:
        raise BackendUnavailableError(f"{ONNX_MISSING}; or use backend='torch' or 'int8'") from err
    return onnxruntime


class OnnxSession:
    """An ONNX Runtime CPU session over an exported threadguard model: numpy in, logits out."""

    def __init__(
        self, path: str | Path, num_threads: int | None = None, *, spinning: bool = True
    ) -> None:
        """``spinning=False`` stops idle intra-op threads from spinning (a small graph run
        beside another session's threads)."""
        ort = require_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
