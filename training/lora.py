"""LoRA adapters on the model's encoder, for fine-tuning (needs the ``train`` extra: peft).

Only training applies them; a saved model keeps the LoRA factors in its delta
(:mod:`classifier.model.serialization`), which loading merges without peft.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from classifier.model.config import LoraSettings
from classifier.model.network import ThreadguardModel
from classifier.model.serialization import lora_layers

logger = logging.getLogger(__name__)


def apply_lora(
    model: ThreadguardModel,
    r: int | None = None,
    alpha: int | None = None,
    dropout: float | None = None,
    target_modules: Sequence[str] | None = None,
    *,
    extra_trainable: Sequence[str] | None = None,
) -> ThreadguardModel:
    """Wrap the model's encoder with peft LoRA adapters, in place, for fine-tuning.

    Arguments left ``None`` come from ``model.config.lora`` (or the
    :class:`LoraSettings` defaults); the effective settings are stored back in
    ``model.config.lora``. Afterwards only the LoRA factors, the encoder
    parameters whose names contain one of ``extra_trainable``, and the heads
    require gradients. Needs the ``train`` extra (peft).
    """
    import peft

    if lora_layers(model.encoder):
        raise ValueError("the encoder already has LoRA adapters")
    base = model.config.lora or LoraSettings()
    settings = LoraSettings(
        r=base.r if r is None else r,
        alpha=base.alpha if alpha is None else alpha,
        dropout=base.dropout if dropout is None else dropout,
        target_modules=base.target_modules if target_modules is None else tuple(target_modules),
        extra_trainable=base.extra_trainable if extra_trainable is None else tuple(extra_trainable),
    )
    lora_config = peft.LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules) if settings.target_modules else None,
        bias="none",
        task_type=peft.TaskType.FEATURE_EXTRACTION,
    )
    was_training = model.training
    model.encoder = peft.get_peft_model(model.encoder, lora_config)
    model.train(was_training)  # new LoRA dropout modules start in training mode
    for name, param in model.encoder.named_parameters():
        if ".lora_" not in name and any(s in name for s in settings.extra_trainable):
            param.requires_grad_(True)
    model.config = model.config.replace(lora=settings)
    logger.info(
        "LoRA applied: %d trainable of %d parameters",
        model.num_parameters(trainable_only=True),
        model.num_parameters(),
    )
    return model
