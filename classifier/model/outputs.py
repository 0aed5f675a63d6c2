"""What the torch model returns: :class:`ThreadguardOutput`, its logits (shared by the model
and the training loss, ``training.losses``, so that neither imports the other).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput


@dataclass
class ThreadguardOutput(ModelOutput):
    """Model output: per-example logits."""

    stance_logits: torch.Tensor | None = None
    toxicity_logits: torch.Tensor | None = None
    stance_head_logits: torch.Tensor | None = None
    span_logits: torch.Tensor | None = None
    constructive_logits: torch.Tensor | None = None
    token_states: torch.Tensor | None = None
