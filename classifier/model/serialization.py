"""How a model folder is written and read, apart from the model class itself.

A model directory written by :meth:`~classifier.model.network.ThreadguardModel.save_pretrained`
holds:

``threadguard_config.json``  the :class:`~classifier.model.config.ModelConfig` (with the
                             encoder *reference*, not a resolved path), the save mode,
                             the optional training config and the versions used
``heads.safetensors``        the stance and toxicity heads (and span, constructiveness)
``encoder/``                 (full mode) the encoder, written by transformers
``encoder_delta.safetensors`` (delta mode) LoRA factors and the other encoder
                             tensors that differ from the base encoder
tokenizer files              written by the tokenizer itself

Here: the file names, the base encoder a delta is applied to (:func:`load_encoder`), the
delta itself (:func:`encoder_delta`, :func:`apply_delta`), finding LoRA layers without
importing peft (:func:`lora_layers`), and the versions a folder records. Loading needs
neither network access nor the training extras (peft, sklearn).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

import torch
import transformers
from torch import nn
from transformers import AutoModel, PreTrainedModel

from classifier._version import __version__
from classifier.model.constants import resolve_encoder

logger = logging.getLogger(__name__)

HEADS_FILE = "heads.safetensors"
ENCODER_DIR = "encoder"
DELTA_FILE = "encoder_delta.safetensors"
FORMAT_VERSION = 1

SaveMode = Literal["auto", "full", "delta"]


def prefixed(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors whose names start with ``prefix``, under their names without it."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_encoder(ref: str) -> PreTrainedModel:
    """The base encoder for a reference; delta saves rely on this being deterministic."""
    return cast(PreTrainedModel, AutoModel.from_pretrained(resolve_encoder(ref)))


def saved_versions(peft_used: bool) -> dict[str, str]:
    """The package versions a saved folder records (peft's only when LoRA was used)."""
    versions = {
        "threadguard": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    if peft_used:
        import peft

        versions["peft"] = peft.__version__
    return versions


def warn_on_version_change(path: Path, saved: Mapping[str, str]) -> None:
    """Log (at info level) the versions that differ from those the folder was saved with."""
    current = saved_versions(peft_used=False)
    changed = {k: (saved[k], v) for k, v in current.items() if k in saved and saved[k] != v}
    if changed:
        logger.info("%s was saved with other versions (saved, now): %s", path, changed)


def unwrap_encoder(encoder: nn.Module) -> nn.Module:
    """The transformers model inside a peft wrapper (LoRA layers still injected)."""
    get_base_model = getattr(encoder, "get_base_model", None)
    return cast(nn.Module, get_base_model()) if callable(get_base_model) else encoder


def lora_layers(encoder: nn.Module) -> dict[str, Any]:
    """peft LoRA layers of ``encoder`` by their name in the plain (un-wrapped) model.

    Duck-typed so that no peft import is needed to find out there are none.
    """
    plain = unwrap_encoder(encoder)
    return {
        name: module
        for name, module in plain.named_modules()
        if hasattr(module, "lora_A") and hasattr(module, "lora_B") and hasattr(module, "base_layer")
    }


def plain_state_dict(encoder: nn.Module) -> dict[str, torch.Tensor]:
    """The encoder's own tensors under their plain names, LoRA factors left out, unmerged."""
    plain = unwrap_encoder(encoder)
    return {
        name.replace(".base_layer.", "."): tensor
        for name, tensor in plain.state_dict().items()
        if ".lora_" not in name
    }


def state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """Fingerprint of a state dict, to make sure a delta is applied to its own base."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def encoder_delta(encoder: nn.Module, ref: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata that turn the base encoder ``ref`` into ``encoder``."""
    base_state = load_encoder(ref).state_dict()
    state = plain_state_dict(encoder)
    if set(state) != set(base_state):
        odd = sorted(set(state) ^ set(base_state))[:5]
        raise ValueError(
            f"encoder does not match its base {ref!r} (differing tensor names, e.g. {odd}); "
            "save in full mode"
        )
    tensors: dict[str, torch.Tensor] = {}
    overwritten = []
    for name, tensor in state.items():
        if tensor.shape != base_state[name].shape or not torch.equal(
            tensor.detach().cpu(), base_state[name]
        ):
            tensors[f"tensor.{name}"] = tensor.detach().cpu().contiguous()
            overwritten.append(name)
    scales: dict[str, float] = {}
    for name, layer in lora_layers(encoder).items():
        adapters = list(layer.active_adapters)
        if len(adapters) != 1:
            raise ValueError(f"{name}: delta mode supports one active LoRA adapter, got {adapters}")
        adapter = adapters[0]
        if (
            not isinstance(layer.base_layer, nn.Linear)
            or getattr(layer, "fan_in_fan_out", False)
            or getattr(layer, "use_dora", {}).get(adapter, False)
            or getattr(layer, "merged", False)
        ):
            raise ValueError(
                f"{name}: only unmerged plain LoRA on Linear layers can be saved as delta"
            )
        tensors[f"lora_A.{name}"] = layer.lora_A[adapter].weight.detach().cpu().contiguous()
        tensors[f"lora_B.{name}"] = layer.lora_B[adapter].weight.detach().cpu().contiguous()
        scales[name] = float(layer.scaling[adapter])
    meta = {
        "base_sha256": state_sha256(base_state),
        "overwritten": overwritten,
        "lora_scales": scales,
    }
    logger.info("delta: %d LoRA layers, %d full tensors", len(scales), len(overwritten))
    return tensors, meta


@torch.no_grad()
def apply_delta(
    encoder: nn.Module,
    tensors: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    path: Path,
) -> None:
    """Rebuild a fine-tuned encoder in place: overwrite tensors, merge W += s * B @ A."""
    state = encoder.state_dict()  # shares storage with the parameters
    if state_sha256(state) != meta["base_sha256"]:
        raise ValueError(
            f"{path} is a delta on a base encoder whose weights differ from the installed "
            "one; install the base encoder it was trained on, or save the model in full mode"
        )
    for name in meta["overwritten"]:
        state[name].copy_(tensors[f"tensor.{name}"])
    for name, scale in meta["lora_scales"].items():
        weight = state[f"{name}.weight"]
        lora_a, lora_b = tensors[f"lora_A.{name}"], tensors[f"lora_B.{name}"]
        weight += (lora_b.float() @ lora_a.float() * scale).to(weight.dtype)
