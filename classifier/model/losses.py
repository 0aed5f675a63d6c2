"""The training loss and the label tensors it reads, kept beside the model.

:meth:`~classifier.model.network.ThreadguardModel.collate` turns common-format rows into
inputs plus :func:`label_tensors`, and ``forward(**batch)`` then returns the loss
(:func:`compute_loss`, on the head :func:`select_heads` picks per row): the model's own
contract, which evaluation and the tests use as well as the trainer. Only training
weighs the terms differently (``training.trainer`` passes the recipe's weights).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F

from classifier.labels import STANCE_LABELS
from classifier.model.config import ModelConfig
from classifier.model.outputs import ThreadguardOutput


def label_tensors(
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
    stance_labels: Sequence[str],
    toxicity_labels: Sequence[str],
    config: ModelConfig | None = None,
) -> dict[str, torch.Tensor]:
    """Label tensors for common-format rows (see ``training.data``).

    ``rows`` is a list of rows or, as a batched ``datasets.map`` passes them, a
    mapping from column name to a list of values.

    Returns ``stance`` (LongTensor [B], index into ``stance_labels``, -1 when the
    row has no stance or one the model does not learn), ``stance_class_mask``
    (BoolTensor [B, S], True where the row's corpus annotates the class; an
    empty ``stance_classes`` means all classes) and ``toxicity`` (FloatTensor
    [B, T], -1 where unknown); with a ``config`` of several stance heads, also
    ``stance_head`` (LongTensor [B], the head that trains each row's corpus).
    """
    if isinstance(rows, Mapping):
        columns = rows
        rows = [
            dict(zip(columns, values, strict=True))
            for values in zip(*columns.values(), strict=True)
        ]
    index = {name: i for i, name in enumerate(stance_labels)}
    stance = torch.full((len(rows),), -1, dtype=torch.long)
    mask = torch.zeros((len(rows), len(stance_labels)), dtype=torch.bool)
    toxicity = torch.full((len(rows), len(toxicity_labels)), -1.0)
    for i, row in enumerate(rows):
        classes = list(row.get("stance_classes") or [])
        for name in classes or stance_labels:
            if name in index:
                mask[i, index[name]] = True
        label = int(row.get("stance", -1))
        if label >= 0 and STANCE_LABELS[label] in index:
            stance[i] = index[STANCE_LABELS[label]]
            mask[i, stance[i]] = True
        for j, name in enumerate(toxicity_labels):
            value = row.get(name)
            if value is not None:
                toxicity[i, j] = float(value)
    out = {"stance": stance, "stance_class_mask": mask, "toxicity": toxicity}
    if config is not None and config.constructive_labels:
        names = config.constructive_labels
        out["constructive"] = torch.tensor(
            [[float(row.get(name, -1.0)) for name in names] for row in rows], dtype=torch.float32
        ).reshape(len(rows), len(names))
    if config is not None and len(config.heads) > 1:
        index_of = {head.name: h for h, head in enumerate(config.heads)}
        out["stance_head"] = torch.tensor(
            [index_of[config.head_for(str(row.get("source", "")))] for row in rows],
            dtype=torch.long,
        )
    return out


def select_heads(output: ThreadguardOutput, stance_head: torch.Tensor | None) -> ThreadguardOutput:
    """``output`` with each row's stance logits taken from the head ``stance_head`` [B]
    names (as :func:`label_tensors` gives it), what the loss trains; ``None``: as is."""
    if stance_head is None:
        return output
    by_head = cast(torch.Tensor, output.stance_head_logits)
    rows = torch.arange(by_head.shape[0], device=by_head.device)
    return ThreadguardOutput(
        stance_logits=by_head[rows, stance_head.to(by_head.device).long()],
        toxicity_logits=output.toxicity_logits,
        stance_head_logits=by_head,
        span_logits=output.span_logits,
        constructive_logits=output.constructive_logits,
    )


def compute_loss(
    outputs: ThreadguardOutput,
    stance: torch.Tensor,
    stance_class_mask: torch.Tensor | None,
    toxicity: torch.Tensor,
    *,
    stance_class_weights: torch.Tensor | None = None,
    toxicity_pos_weight: torch.Tensor | None = None,
    stance_weight: float = 1.0,
    toxicity_weight: float = 1.0,
    stance_example_weights: torch.Tensor | None = None,
    span_targets: torch.Tensor | None = None,
    constructive: torch.Tensor | None = None,
    span_weight: float = 1.0,
    constructive_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Multi-task loss with masking: unknown labels contribute exactly zero gradient.

    Stance: cross-entropy over the classes the example's corpus annotates
    (``stance_class_mask``; other logits are pushed to the dtype's minimum so a
    corpus never teaches a class it lacks), averaged over examples with
    ``stance >= 0`` (weighted like ``F.cross_entropy`` when class weights are
    given, and by ``stance_example_weights`` [B] when those are given, e.g. to
    balance classes within each corpus); 0 when no example has a stance. Toxicity: binary cross-entropy with
    logits against targets in [0, 1] (soft labels allowed), averaged over the
    known (``>= 0``) entries; 0 when none is known.

    Spans (``span_targets`` [B, L, K] against ``span_logits``) and constructiveness
    (``constructive`` [B, C] against ``constructive_logits``), when given, are masked
    binary cross-entropies like toxicity, added with their weights.

    Returns ``(stance_weight * stance + toxicity_weight * toxicity [+ ...], parts)`` with
    ``parts = {"stance": ..., "toxicity": ...[, "spans": ..., "constructive": ...]}``
    detached.
    """
    stance_logits = cast(torch.Tensor, outputs.stance_logits)
    toxicity_logits = cast(torch.Tensor, outputs.toxicity_logits)
    stance = stance.to(stance_logits.device).long()
    labelled = stance >= 0
    if stance_class_mask is not None:
        allowed = stance_class_mask.to(stance_logits.device).bool()
        # Unlabelled rows keep all classes (a fully masked row would give NaNs), and
        # a labelled row always allows its own class.
        allowed = allowed | ~labelled.unsqueeze(1)
        allowed = allowed | (
            F.one_hot(stance.clamp_min(0), allowed.shape[1]).bool() & labelled.unsqueeze(1)
        )
        stance_logits = stance_logits.masked_fill(~allowed, torch.finfo(stance_logits.dtype).min)
    weights = stance_class_weights.to(stance_logits) if stance_class_weights is not None else None
    per_example = F.cross_entropy(
        stance_logits, stance, weight=weights, ignore_index=-1, reduction="none"
    )
    counted = labelled.to(per_example.dtype)
    if weights is not None:
        counted = counted * weights[stance.clamp_min(0)]
    if stance_example_weights is not None:
        example_weights = stance_example_weights.to(per_example)
        per_example = per_example * example_weights
        counted = counted * example_weights
    denominator = counted.sum()
    # Same as F.cross_entropy's weighted mean, but 0 instead of NaN without labels.
    stance_loss = per_example.sum() / denominator.clamp_min(1e-12)

    pos_weight = (
        toxicity_pos_weight.to(toxicity_logits) if toxicity_pos_weight is not None else None
    )
    toxicity_loss = _masked_bce(toxicity_logits, toxicity, pos_weight)
    loss = stance_weight * stance_loss + toxicity_weight * toxicity_loss
    parts = {"stance": stance_loss.detach(), "toxicity": toxicity_loss.detach()}
    for name, logits, targets, weight in (
        ("spans", outputs.span_logits, span_targets, span_weight),
        ("constructive", outputs.constructive_logits, constructive, constructive_weight),
    ):
        if targets is None:
            continue
        if logits is None:
            raise ValueError(f"{name} targets were given to a model without a {name} head")
        part = _masked_bce(logits, targets)
        loss = loss + weight * part
        parts[name] = part.detach()
    return loss, parts


def _masked_bce(
    logits: torch.Tensor, targets: torch.Tensor, pos_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Binary cross-entropy against soft targets in [0, 1], averaged over the known
    (``>= 0``) entries; 0 when none is known."""
    targets = targets.to(logits)
    known = targets >= 0
    total = F.binary_cross_entropy_with_logits(
        logits,
        targets.clamp(0.0, 1.0),
        weight=known.to(logits.dtype),
        pos_weight=pos_weight,
        reduction="sum",
    )
    return total / known.sum().clamp_min(1).to(total.dtype)
