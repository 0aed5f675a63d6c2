"""Start a training run from a saved model's adapter and heads (``init_from`` in a recipe).

v0.6 continues v0.5's comment model on a mix that adds threat and contrast data, instead of
training a fresh adapter: the news-comment ranking v0.5 reached is kept as the starting
point, and a 2-core CPU spends its hours on what is new. The saved model must be a delta on
the same base encoder with the same LoRA layers (what :meth:`save_pretrained` writes in
delta mode). Heads are copied row by row *by label name*, so a label the new recipe adds
(``severe_toxicity``) starts fresh while the others keep their trained weights.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from classifier.model.constants import CONFIG_FILE
from classifier.model.network import ThreadguardModel
from classifier.model.serialization import DELTA_FILE, HEADS_FILE, lora_layers, plain_state_dict

logger = logging.getLogger(__name__)

#: Head prefix → the model-config field naming its output rows.
_HEAD_LABELS = {
    "toxicity_head": "toxicity_labels",
    "span_head": "span_labels",
    "constructive_head": "constructive_labels",
}


@torch.no_grad()
def warm_start(model: ThreadguardModel, path: str | Path) -> None:
    """Load the adapter and heads saved in ``path`` into ``model`` (LoRA already applied).

    Raises ValueError naming the folder when it is not a delta-mode save whose LoRA layers
    and ranks match ``model``'s.
    """
    path = Path(path)
    meta = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    if meta.get("save_mode") != "delta":
        raise ValueError(f"init_from {path}: only a delta-mode save can seed a run")
    saved_config = meta["model_config"]
    if saved_config.get("encoder") != model.config.encoder:
        raise ValueError(
            f"init_from {path}: saved on encoder {saved_config.get('encoder')!r}, "
            f"the recipe uses {model.config.encoder!r}"
        )
    tensors = load_file(str(path / DELTA_FILE))
    layers = lora_layers(model.encoder)
    if set(layers) != set(meta["delta"]["lora_scales"]):
        raise ValueError(f"init_from {path}: its LoRA layers differ from the recipe's")
    for name, layer in layers.items():
        adapter = next(iter(layer.active_adapters))
        for part in ("lora_A", "lora_B"):
            target = getattr(layer, part)[adapter].weight
            source = tensors[f"{part}.{name}"]
            if source.shape != target.shape:
                raise ValueError(
                    f"init_from {path}: {part}.{name} has shape {tuple(source.shape)}, "
                    f"the recipe's LoRA {tuple(target.shape)} (a different rank?)"
                )
            target.copy_(source)
    state = plain_state_dict(model.encoder)  # shares storage with the parameters
    for name in meta["delta"]["overwritten"]:
        state[name].copy_(tensors[f"tensor.{name}"])
    heads = load_file(str(path / HEADS_FILE))
    for prefix, head in model._heads().items():
        _copy_head(head, heads, prefix, saved_config, model, path)
    logger.info("warm start from %s: %d LoRA layers, heads by label", path, len(layers))


def _copy_head(
    head: nn.Linear,
    saved: dict[str, torch.Tensor],
    prefix: str,
    saved_config: dict[str, list[str]],
    model: ThreadguardModel,
    path: Path,
) -> None:
    field = _HEAD_LABELS.get(prefix)
    if field is None or f"{prefix}.weight" not in saved:
        logger.info("warm start: %s starts fresh (not in %s)", prefix, path)
        return
    old = list(saved_config.get(field, []))
    new = list(getattr(model.config, field))
    weight, bias = saved[f"{prefix}.weight"], saved[f"{prefix}.bias"]
    fresh = []
    for row, label in enumerate(new):
        if label in old:
            head.weight[row].copy_(weight[old.index(label)])
            head.bias[row].copy_(bias[old.index(label)])
        else:
            fresh.append(label)
    if fresh:
        logger.info("warm start: %s labels %s start fresh", prefix, fresh)
