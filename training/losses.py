"""The training loss: a masked multi-task loss over the model's logits, on the stance head
each row's corpus trains.

:func:`batch_loss` runs the model on a :func:`training.batches.training_batch` and returns
:func:`compute_loss` of it; the trainer passes the recipe's weights, the tests the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F

from classifier.model.network import ThreadguardModel
from classifier.model.outputs import ThreadguardOutput
from training.batches import LABEL_KEYS


def batch_loss(
    model: ThreadguardModel, batch: Mapping[str, Any], **weights: Any
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of a training batch and its detached parts: the model run on the batch's
    inputs, each row's stance read from its head (:func:`select_heads`), then
    :func:`compute_loss` with ``weights`` (its keyword arguments)."""
    inputs = {k: v for k, v in batch.items() if k not in LABEL_KEYS}
    output = select_heads(model(**inputs), batch.get("stance_head"))
    return compute_loss(
        output,
        batch["stance"],
        batch["stance_class_mask"],
        batch["toxicity"],
        span_targets=batch.get("span_targets"),
        constructive=batch.get("constructive"),
        **weights,
    )


def select_heads(output: ThreadguardOutput, stance_head: torch.Tensor | None) -> ThreadguardOutput:
    """``output`` with each row's stance logits taken from the head ``stance_head`` [B]
    names (as :func:`training.batches.label_tensors` gives it), what the loss trains; ``None``: as is."""
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
