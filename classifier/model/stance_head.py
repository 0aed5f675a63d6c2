"""The one-pass model's stance head: cross-attention from a comment's token states to its
target's, over the comment model's own encoder.

Why: the two-pass design read every comment twice (the comment model alone, then a stance
cross-encoder over the (target, comment) pair) and re-encoded the same article with every
comment under it. Here the encoder runs once per distinct text: the comment's token states
feed every comment head (toxicity, spans, constructiveness) and this head; a target's
(article title and lead, parent comment) and a context's are computed once per thread and
reused, and a parent that is itself a comment of the batch costs nothing more.

The head projects the frozen encoder states into a smaller width, marks each segment
(comment, target, context) with a learned embedding, and runs a few blocks in which the
comment's tokens attend over the context, the target and themselves; the comment tokens'
mean, its first token and the target's mean are read by one linear layer giving every
stance head's logits [B, H, S] (a head's missing classes at -1e4), as the cross-encoder's
stance head gave them. Plain tensor operations only, so that it exports to ONNX as is.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from classifier.model.config_head import (
    HEAD_INPUTS,
    HEAD_OUTPUTS,
    HEAD_WEIGHTS_FILE,
    StanceHeadConfig,
    read_head_meta,
)
from classifier.model.constants import HEAD_CONFIG_FILE

#: Logit of a class a stance head does not learn: exp() of it is 0 in float32.
MISSING_LOGIT = -1.0e4
#: Segment ids of the head's three inputs.
COMMENT, TARGET, CONTEXT = 0, 1, 2


class _Layer(nn.Module):
    """A BERT encoder layer: multi-head attention from ``x`` over ``memory`` (``x`` itself
    for self-attention), then a GELU feed-forward layer, each with a post-norm residual.
    Its weights are named so that a transformers ``BertLayer``'s load into it
    (:data:`BERT_LAYER_NAMES`)."""

    def __init__(self, dim: int, n_heads: int, ffn: int, dropout: float, eps: float) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"head width {dim} is not a multiple of {n_heads} attention heads")
        self.n_heads = n_heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.attention_out = nn.Linear(dim, dim)
        self.attention_norm = nn.LayerNorm(dim, eps=eps)
        self.intermediate = nn.Linear(dim, ffn)
        self.output = nn.Linear(ffn, dim)
        self.output_norm = nn.LayerNorm(dim, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.n_heads, d // self.n_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        q = self._split(self.query(x))
        k, v = self._split(self.key(memory)), self._split(self.value(memory))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias  # [B, h, Lq, Lm]
        attended = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(x.shape)
        x = self.attention_norm(x + self.dropout(self.attention_out(attended)))
        inner = nn.functional.gelu(self.intermediate(x))
        return self.output_norm(x + self.dropout(self.output(inner)))


#: transformers ``BertLayer`` parameter name → :class:`_Layer`'s.
BERT_LAYER_NAMES = {
    "attention.self.query": "query",
    "attention.self.key": "key",
    "attention.self.value": "value",
    "attention.output.dense": "attention_out",
    "attention.output.LayerNorm": "attention_norm",
    "intermediate.dense": "intermediate",
    "output.dense": "output",
    "output.LayerNorm": "output_norm",
}


class UpperLayersHead(nn.Module):
    """Stance from a pair encoder's upper layers over one layer's states of the context,
    the target and the comment, each read alone by the shared encoder and joined here
    (a learned vector per segment stands for what the joint reading's token types and
    positions told the lower layers); the pair's mean state is read by a linear layer
    giving every stance head's logits, as the cross-encoder read its pair.

    Args:
        config: ``dim`` the encoder's width, ``depth`` the layers, ``attention_heads``,
            ``ffn`` (:class:`StanceHeadConfig`; ``layers`` names the one layer read).
        head_classes: [H, S] booleans, True where stance head h learns class s.
        eps: the layers' LayerNorm epsilon.
    """

    def __init__(
        self, config: StanceHeadConfig, head_classes: torch.Tensor, eps: float = 1e-12
    ) -> None:
        super().__init__()
        if len(config.layers) != 1:
            raise ValueError(f"an 'upper' head reads one layer, got {list(config.layers)}")
        self.config = config
        self.segment = nn.Embedding(3, config.dim)
        nn.init.zeros_(self.segment.weight)
        self.blocks = nn.ModuleList(
            _Layer(config.dim, config.attention_heads, config.ffn, config.dropout, eps)
            for _ in range(config.depth)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head_classes: torch.Tensor  # [H, S]: True where a head learns a class
        self.register_buffer("head_classes", head_classes.bool(), persistent=False)
        h, s = head_classes.shape
        self.classify = nn.Linear(config.dim, h * s)

    def forward(
        self,
        comment_states: torch.Tensor,
        comment_mask: torch.Tensor,
        target_states: torch.Tensor,
        target_mask: torch.Tensor,
        context_states: torch.Tensor,
        context_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Every stance head's logits [B, H, S] (see :meth:`CrossStanceHead.forward`)."""
        seq = torch.cat(
            [
                context_states[:, :, 0] + self.segment.weight[CONTEXT],
                target_states[:, :, 0] + self.segment.weight[TARGET],
                comment_states[:, :, 0] + self.segment.weight[COMMENT],
            ],
            dim=1,
        )
        mask = torch.cat([context_mask, target_mask, comment_mask], dim=1).to(seq.dtype)
        bias = ((1.0 - mask) * MISSING_LOGIT)[:, None, None, :]
        for block in self.blocks:
            seq = block(seq, seq, bias)
        return by_heads(self.classify(self.dropout(_masked_mean(seq, mask))), self.head_classes)


def by_heads(logits: torch.Tensor, head_classes: torch.Tensor) -> torch.Tensor:
    """[B, H * S] logits as every head's [B, H, S], a head's missing classes at
    :data:`MISSING_LOGIT`."""
    by_head = logits.view(-1, head_classes.shape[0], head_classes.shape[1])
    return by_head.masked_fill(~head_classes, MISSING_LOGIT)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(x.dtype)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class CrossStanceHead(nn.Module):
    """Stance from the encoder states of a comment, its target and its context.

    Args:
        config: widths, depth and which encoder layers it reads (:class:`StanceHeadConfig`).
        in_dim: the encoder's hidden size.
        head_classes: [H, S] booleans, True where stance head h learns class s.
    """

    def __init__(self, config: StanceHeadConfig, in_dim: int, head_classes: torch.Tensor) -> None:
        super().__init__()
        self.config = config
        self.layer_mix = nn.Parameter(torch.zeros(len(config.layers)))
        self.segment = nn.Embedding(3, in_dim)
        self.project = nn.Linear(in_dim, config.dim)
        self.norm = nn.LayerNorm(config.dim)
        self.blocks = nn.ModuleList(
            _Layer(config.dim, config.attention_heads, config.ffn, config.dropout, eps=1e-5)
            for _ in range(config.depth)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head_classes: torch.Tensor  # [H, S]: True where a head learns a class
        self.register_buffer("head_classes", head_classes.bool(), persistent=False)
        h, s = head_classes.shape
        self.classify = nn.Linear(3 * config.dim, h * s)
        nn.init.normal_(self.segment.weight, std=0.02)

    def _embed(self, states: torch.Tensor, segment: int) -> torch.Tensor:
        """[B, L, n_layers, D] encoder states → [B, L, dim]."""
        mixed = (states * self.layer_mix.softmax(dim=0)[:, None]).sum(dim=-2)
        return self.norm(self.project(mixed + self.segment.weight[segment]))

    def forward(
        self,
        comment_states: torch.Tensor,
        comment_mask: torch.Tensor,
        target_states: torch.Tensor,
        target_mask: torch.Tensor,
        context_states: torch.Tensor,
        context_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Every stance head's logits [B, H, S], its missing classes at
        :data:`MISSING_LOGIT`. States are [B, L, n_layers, D] (the layers of
        :attr:`StanceHeadConfig.layers`), masks [B, L] (1 for a token)."""
        c = self._embed(comment_states, COMMENT)
        t = self._embed(target_states, TARGET)
        x = self._embed(context_states, CONTEXT)
        fixed = torch.cat([x, t], dim=1)
        mask = torch.cat([context_mask, target_mask, comment_mask], dim=1).to(c.dtype)
        bias = ((1.0 - mask) * MISSING_LOGIT)[:, None, None, :]
        for block in self.blocks:
            c = block(c, torch.cat([fixed, c], dim=1), bias)
        pooled = torch.cat(
            [_masked_mean(c, comment_mask), c[:, 0], _masked_mean(t, target_mask)], dim=-1
        )
        return by_heads(self.classify(self.dropout(pooled)), self.head_classes)


def compose_comment_logits(
    by_head: torch.Tensor, borrowed: Sequence[tuple[int, int]]
) -> torch.Tensor:
    """The stance logits a comment is scored with, from the heads' [B, H, S]: the first
    head's, and for each class it lacks, ``(class, head)`` in ``borrowed``, that head's
    probability, the first head's distribution scaled by what is left."""
    if not borrowed:
        return by_head[:, 0]
    log_probs = torch.log_softmax(by_head, dim=-1)
    columns = torch.arange(by_head.shape[-1], device=by_head.device)
    taken_each = torch.stack([log_probs[:, h, k] for k, h in borrowed], dim=1)
    taken = taken_each.exp().sum(dim=1).clamp(max=1.0 - 1e-6)
    out = log_probs[:, 0] + torch.log1p(-taken).unsqueeze(1)
    for j, (k, _) in enumerate(borrowed):
        out = torch.where(columns == k, taken_each[:, j : j + 1], out)
    # classes borrowed from different heads can take more than all the mass between them
    return out - torch.logsumexp(out, dim=-1, keepdim=True)


StanceHeadModule = CrossStanceHead | UpperLayersHead


class _Exportable(nn.Module):
    """The head with the comment logits composed, as the runtime reads it."""

    def __init__(self, head: StanceHeadModule, borrowed: Sequence[tuple[int, int]]) -> None:
        super().__init__()
        self.head = head
        self.borrowed = list(borrowed)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        by_head = self.head(*inputs)
        return compose_comment_logits(by_head, self.borrowed), by_head


def borrowed_classes(head_classes: torch.Tensor) -> list[tuple[int, int]]:
    """(class, head) for each class the first head lacks and a later head has."""
    allowed = head_classes.bool().tolist()
    return [
        (k, next(h for h, row in enumerate(allowed) if row[k]))
        for k in range(len(allowed[0]))
        if not allowed[0][k] and any(row[k] for row in allowed)
    ]


def build_head(meta: dict[str, Any], in_dim: int) -> StanceHeadModule:
    """A head (untrained) as a saved head's metadata describes it."""
    labels = list(meta["stance_labels"])
    classes = torch.tensor([[n in h["classes"] for n in labels] for h in meta["stance_heads"]])
    config = StanceHeadConfig.from_dict(meta["head"])
    if config.kind == "upper":
        return UpperLayersHead(config, classes)
    return CrossStanceHead(config, in_dim, classes)


def load_head(folder: Path) -> _Exportable:
    """The saved stance head of a one-pass model folder, eval mode, comment logits
    composed (what :class:`TorchHeadRunner` and the ONNX export run)."""
    from safetensors.torch import load_file

    meta = read_head_meta(folder)
    weights = load_file(str(folder / HEAD_WEIGHTS_FILE))
    in_dim = weights["project.weight"].shape[1] if "project.weight" in weights else 0
    head = build_head(meta, int(in_dim))
    head.load_state_dict(weights)
    return _Exportable(head, borrowed_classes(cast(torch.Tensor, head.head_classes))).eval()


def save_head(head: StanceHeadModule, meta: dict[str, Any], folder: Path) -> None:
    """Write a head and its metadata (``head``, ``stance_labels``, ``stance_heads``,
    ``stance_offsets``) into a one-pass model folder."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in head.state_dict().items()}, str(folder / HEAD_WEIGHTS_FILE)
    )
    (folder / HEAD_CONFIG_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


class TorchHeadRunner:
    """Runs a loaded head in torch (the torch backends)."""

    def __init__(self, head: _Exportable) -> None:
        self.head = head

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            comment, by_head = self.head(*(torch.from_numpy(inputs[n]) for n in HEAD_INPUTS))
        return comment.numpy(), by_head.numpy()


def export_head(head: _Exportable, path: Path) -> Path:
    """Export a loaded head to ONNX at ``path`` (dynamic batch and lengths)."""
    n_layers = len(head.head.config.layers)
    inner = head.head
    dim = inner.project.in_features if isinstance(inner, CrossStanceHead) else inner.config.dim
    example = []
    for length in (5, 3, 2):
        example += [torch.randn(2, length, n_layers, dim), torch.ones(2, length)]
    dynamic: dict[str, dict[int, str]] = {}
    for name in HEAD_INPUTS:
        segment = name.split("_")[0]
        dynamic[name] = {0: "batch", 1: f"{segment}_length"}
    dynamic.update({name: {0: "batch"} for name in HEAD_OUTPUTS})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            head,
            tuple(example),
            str(tmp),
            input_names=list(HEAD_INPUTS),
            output_names=list(HEAD_OUTPUTS),
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(path)
    return path
