"""Model versions: what output rows, the hook and the API name a model by.

``<name>-<12 hex>``: the model folder's name (:func:`version_name`) and a digest of its
config, training config, stance offsets and heads (:func:`version_digest`). The ONNX
export cache's entry stores the digest, so an ONNX predictor names its model like the torch one
without loading torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from classifier.model.network import ThreadguardModel


def version_name(path: str | Path | None, training_config: Mapping[str, Any] | None) -> str:
    """The name part of a model version: the folder's name, else the training output_dir's."""
    name = Path(path).resolve().name if path is not None else ""
    if not name:
        out_dir = (training_config or {}).get("output_dir")
        name = Path(str(out_dir)).name if out_dir else "threadguard"
    return name


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
