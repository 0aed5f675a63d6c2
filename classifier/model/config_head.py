"""Settings of the one-pass model's stance head (:mod:`classifier.model.stance_head`), its
files and its graph's inputs and outputs: declarations, no torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from pydantic import Field

from classifier.config_model import ConfigModel
from classifier.model.constants import HEAD_CONFIG_FILE

Positive = Annotated[int, Field(strict=True, ge=1)]

#: The stance head's weights, beside its settings (``constants.HEAD_CONFIG_FILE``).
HEAD_WEIGHTS_FILE = "stance_head.safetensors"
#: The head graph's inputs and outputs, in order.
HEAD_INPUTS = (
    "comment_states",
    "comment_mask",
    "target_states",
    "target_mask",
    "context_states",
    "context_mask",
)
HEAD_OUTPUTS = ("stance_logits", "stance_head_logits")


def read_head_meta(folder: Path) -> dict[str, Any]:
    """A one-pass model folder's head metadata: ``head`` (:class:`StanceHeadConfig`),
    ``stance_labels``, ``stance_heads`` and ``stance_offsets``."""
    return cast(dict[str, Any], json.loads((folder / HEAD_CONFIG_FILE).read_text("utf-8")))


class StanceHeadConfig(ConfigModel):
    """How the stance head reads the encoder's states.

    Attributes:
        kind: ``"cross"``, fresh blocks in which the comment's tokens attend over the
            target's (``dim``, ``depth``, ``attention_heads``, ``ffn``); ``"upper"``,
            the upper layers of a pair encoder (a BERT layer's shape: ``dim`` is the
            encoder's width) over the target's, the context's and the comment's states
            of one layer (``layers``, one), jointly, as a cross-encoder's last layers
            read a pair.
        layers: the encoder layers it reads (0 = embeddings, the encoder's depth = its
            last layer), mixed by learned weights.
        dim: the head's width (the states are projected to it).
        depth: how many cross-attention blocks.
        attention_heads: attention heads per block.
        ffn: the feed-forward layers' inner width.
        dropout: dropout in the head while it trains.
        target_tokens: a target or context is read alone, cut at this many tokens
            (special tokens included), so that the same text gives the same states
            wherever it is the target.
        comment_tokens: the head reads the first this many of the comment's token states
            (the encoder read the whole first window: toxicity and spans see it all);
            stance is mostly said early, and the head's cost grows with its length.
    """

    kind: Literal["cross", "upper"] = "cross"
    layers: tuple[int, ...] = (6,)
    dim: Positive = 256
    depth: Positive = 2
    attention_heads: Positive = 4
    ffn: Positive = 512
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    target_tokens: Annotated[int, Field(strict=True, ge=4)] = 128
    comment_tokens: Annotated[int, Field(strict=True, ge=4)] = 128
