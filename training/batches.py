"""Training batches: common-format rows (``training.data``) as model inputs plus the label
tensors the loss reads.

Only training needs labels, so they live here and not on the model: the runtime model
takes inputs and returns logits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import torch
from transformers import BatchEncoding

from classifier.labels import STANCE_LABELS
from classifier.model.config import ModelConfig
from classifier.model.network import ThreadguardModel
from classifier.model.spans import char_values, token_targets

#: The keys of a training batch that are labels, not model inputs.
LABEL_KEYS = (
    "stance",
    "stance_class_mask",
    "toxicity",
    "stance_head",
    "span_targets",
    "constructive",
)


def training_batch(model: ThreadguardModel, rows: Sequence[Mapping[str, Any]]) -> BatchEncoding:
    """``rows`` as ``model``'s inputs plus their labels (:func:`label_tensors`, and
    :func:`span_targets` when the model has a span head); a ``DataLoader`` ``collate_fn``
    once bound to a model. :func:`training.losses.batch_loss` reads it."""
    texts = [r["text"] for r in rows]
    batch = model.encode(
        [r.get("target", "") for r in rows], [r.get("context", "") for r in rows], texts
    )
    batch.update(label_tensors(rows, model.stance_labels, model.toxicity_labels, model.config))
    if model.span_head is not None:
        batch["span_targets"] = span_targets(model, rows, batch["comment_mask"])
    return batch


def span_targets(
    model: ThreadguardModel, rows: Sequence[Mapping[str, Any]], comment_mask: torch.Tensor
) -> torch.Tensor:
    """Per-token span targets [B, L, K] for encoded ``rows``: each comment token's
    largest annotated value over its characters, -1 (unknown) on every other token
    and on every token of a row whose corpus does not annotate spans."""
    labels = model.config.span_labels
    out = torch.full((*comment_mask.shape, len(labels)), -1.0)
    annotated = [i for i, r in enumerate(rows) if r.get("spans")]
    if not annotated:
        return out
    alignment = model.input_encoder.alignment([rows[i]["text"] for i in annotated])
    for i, (offsets, _) in zip(annotated, alignment, strict=True):
        text = rows[i]["text"]
        values = cast(np.ndarray, char_values(rows[i]["spans"], len(text), labels))
        positions = torch.nonzero(comment_mask[i]).flatten()
        targets = token_targets(values, offsets[: len(positions)])
        out[i, positions[: len(targets)]] = torch.from_numpy(targets)
    return out


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
