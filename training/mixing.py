"""The training mix: the recipe's corpora, mixed by weight, the labels they teach,
loss weights from label frequencies, and the order examples are batched in.

Everything here is decided by the recipe and its seed before the first step, so the
trainer (:mod:`training.trainer`) only consumes it; stance offsets
(:mod:`training.offsets`) load the same dev splits through :func:`load_corpora`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
import torch

from classifier.labels import STANCE_LABELS, TOXICITY_LABELS
from classifier.model.config import ModelConfig, StanceHead
from classifier.model.network import ThreadguardModel
from training.config import CorpusEntry, TrainConfig
from training.corpora import load_corpus

logger = logging.getLogger(__name__)


@dataclass
class CorpusData:
    """One corpus's splits, as the trainer uses them."""

    name: str
    train: datasets.Dataset | None
    dev: datasets.Dataset | None


def load_corpora(
    config: TrainConfig, only: Collection[str] | None = None, train: bool = True
) -> list[CorpusData]:
    """Load the recipe's corpora (those named in ``only``, default all): their train
    splits as the recipe samples them (None with ``train=False``) and their dev splits
    as checkpoints are chosen on."""
    out = []
    for entry in config.corpora:
        if only is not None and entry.name not in only:
            continue
        splits = load_corpus(entry.name, config.data_root, hub_id=entry.hub_id)
        assert isinstance(splits, datasets.DatasetDict)
        train_rows = _train_rows(splits.get("train"), entry, config) if train else None
        out.append(CorpusData(entry.name, train_rows, _dev_rows(splits.get("dev"), entry, config)))
    return out


def _train_rows(
    train: datasets.Dataset | None, entry: CorpusEntry, config: TrainConfig
) -> datasets.Dataset | None:
    if train is not None and entry.max_examples and len(train) > entry.max_examples:
        train = train.shuffle(seed=config.seed).select(range(entry.max_examples))
    if train is not None and entry.assume:
        train = train.map(_assume, fn_kwargs={"values": dict(entry.assume)})
    if train is not None and config.comment_only:
        train = train.map(_comment_alone)
    return train


def _dev_rows(
    dev: datasets.Dataset | None, entry: CorpusEntry, config: TrainConfig
) -> datasets.Dataset | None:
    cap = entry.eval_max_examples or config.eval_max_examples
    if dev is not None and cap and len(dev) > cap:
        dev = dev.shuffle(seed=config.seed).select(range(cap))
    if dev is not None and config.comment_only:
        dev = dev.map(_comment_alone)
    return dev


def _comment_alone(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` without its target and context (a ``comment_only`` recipe)."""
    return {"target": "", "context": ""}


def _assume(row: dict[str, Any], values: Mapping[str, float]) -> dict[str, Any]:
    """``row`` with each label of ``values`` set where the corpus left it unknown."""
    return {k: float(v) if row[k] < 0 else row[k] for k, v in values.items()}


def head_dev_splits(
    model_config: ModelConfig, head: str, corpora: Sequence[CorpusData]
) -> list[tuple[str, datasets.Dataset]]:
    """(name, dev split) of each corpus trained through stance head ``head`` whose dev
    split has stance labels."""
    return [
        (c.name, c.dev)
        for c in corpora
        if model_config.head_for(c.name) == head
        and c.dev is not None
        and any(s >= 0 for s in c.dev["stance"])
    ]


def learned_labels(train: datasets.Dataset) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The stance classes and toxicity labels the training data actually annotates."""
    stance = {name for classes in train["stance_classes"] for name in classes}
    stance |= {STANCE_LABELS[i] for i in train["stance"] if i >= 0}
    return tuple(n for n in STANCE_LABELS if n in stance), both_kinds(train, TOXICITY_LABELS)


def both_kinds(train: datasets.Dataset, names: Sequence[str]) -> tuple[str, ...]:
    """The label columns of ``names`` with both positive and negative examples in
    ``train``: all-negative data teaches nothing to score."""
    found = []
    for name in names:
        values = np.asarray(train[name], dtype=np.float32)
        if (values >= 0.5).any() and ((values >= 0) & (values < 0.5)).any():
            found.append(name)
    return tuple(found)


def learned_span_labels(train: datasets.Dataset, asked: Sequence[str]) -> tuple[str, ...]:
    """The span labels of ``asked`` that some training row marks with a share >= 0.5."""
    found: set[str] = set()
    for spans in train["spans"]:
        if spans:
            found.update(label for _, _, label, value in json.loads(spans) if value >= 0.5)
    return tuple(n for n in asked if n in found)


def head_classes(
    train: datasets.Dataset, config: ModelConfig, stance_labels: Sequence[str]
) -> tuple[StanceHead, ...]:
    """``config``'s stance heads, each with the classes of ``stance_labels`` its corpora
    annotate in ``train`` (of those the recipe gives the head, when it gives some).

    Raises ``ValueError`` for a head that would learn fewer than two classes.
    """
    found: dict[str, set[str]] = {head.name: set() for head in config.stance_heads}
    columns = zip(train["source"], train["stance_classes"], train["stance"], strict=True)
    for source, classes, label in columns:
        # a corpus with no class list annotates at least the labels it uses
        found[config.head_for(source)].update(classes, [STANCE_LABELS[label]] if label >= 0 else [])
    heads = []
    for head in config.stance_heads:
        allowed = head.classes or stance_labels
        classes = tuple(n for n in stance_labels if n in found[head.name] and n in allowed)
        if len(classes) < 2:
            raise ValueError(
                f"stance head {head.name!r} would learn {list(classes)}: its corpora "
                f"{list(head.corpora) or '(the unnamed ones)'} need at least two stance classes"
            )
        heads.append(head.replace(classes=classes))
    return tuple(heads)


def mix_training_data(corpora: Sequence[CorpusData], config: TrainConfig) -> datasets.Dataset:
    """Concatenate the train splits, each repeated or subsampled by its recipe weight."""
    rng = np.random.default_rng(config.seed)
    parts = []
    for entry, data in zip(config.corpora, corpora, strict=True):
        if data.train is None or len(data.train) == 0:
            logger.warning("%s has no train split; used for evaluation only", entry.name)
            continue
        n = len(data.train)
        whole, frac = divmod(entry.weight, 1.0)
        indices = np.concatenate(
            [np.arange(n)] * int(whole) + [rng.permutation(n)[: round(frac * n)]]
        )
        parts.append(data.train.select(indices.tolist()))
        logger.info("train mix: %s %d examples (weight %s)", entry.name, len(indices), entry.weight)
    if not parts:
        raise ValueError("no corpus of the recipe has a train split")
    return datasets.concatenate_datasets(parts)


def class_weights(
    train: datasets.Dataset,
    model: ThreadguardModel,
    how: str,
    stance_loss_weights: Mapping[str, float] | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None, np.ndarray | None]:
    """Loss weights from label frequencies: (stance class weights, toxicity positive
    weights, per-example stance weights).

    ``balanced`` weighs a class by n / (k * count), ``sqrt`` by the square root
    of that (milder); both over the whole mix. ``corpus_balanced`` and
    ``corpus_sqrt`` do the same within each corpus, per example, so that a rare
    class of a small corpus (RumourEval's ``deny``) is not drowned by another
    corpus's frequent one. Weights are normalised to mean 1 and capped at 10.
    ``stance_loss_weights`` (corpus name → factor, a recipe's ``stance_loss_weight``)
    then multiply the per-example stance weights of that corpus's rows.
    """
    stance = np.asarray(train["stance"])
    scaled = {k: v for k, v in (stance_loss_weights or {}).items() if v != 1.0}
    sources = np.asarray(train["source"]) if scaled or how.startswith("corpus") else None
    if how == "none":
        return None, None, _scale_by_corpus(None, sources, stance, scaled)
    power = 1.0 if how.endswith("balanced") else 0.5
    stance_w = example_w = None
    if sources is not None and how.startswith("corpus"):
        example_w = np.zeros(len(stance), dtype=np.float32)
        for source in np.unique(sources[stance >= 0]):
            rows = (sources == source) & (stance >= 0)
            classes, counts = np.unique(stance[rows], return_counts=True)
            per_class = (counts.sum() / (len(classes) * counts)) ** power
            example_w[rows] = per_class[np.searchsorted(classes, stance[rows])]
        labelled = stance >= 0
        if labelled.any():
            example_w[labelled] = np.minimum(example_w[labelled] / example_w[labelled].mean(), 10.0)
    else:
        class_counts = Counter(STANCE_LABELS[i] for i in stance if i >= 0)
        if class_counts:
            total = sum(class_counts.values())
            raw = [
                (total / (len(class_counts) * class_counts[n])) ** power if class_counts[n] else 0.0
                for n in model.stance_labels
            ]
            present = [w for w in raw if w > 0]
            mean = sum(present) / len(present)
            stance_w = torch.tensor([min(w / mean, 10.0) if w else 1.0 for w in raw])
    pos = []
    for name in model.toxicity_labels:
        values = np.asarray(train[name], dtype=np.float32)
        known = values[values >= 0]
        p = float(known.mean()) if len(known) else 0.0
        pos.append(min(((1 - p) / p) ** power, 10.0) if 0 < p < 1 else 1.0)
    return stance_w, torch.tensor(pos), _scale_by_corpus(example_w, sources, stance, scaled)


def _scale_by_corpus(
    example_w: np.ndarray | None,
    sources: np.ndarray | None,
    stance: np.ndarray,
    factors: Mapping[str, float],
) -> np.ndarray | None:
    """``example_w`` (ones where absent) with each named corpus's labelled rows scaled."""
    if not factors or sources is None:
        return example_w
    weights = example_w.copy() if example_w is not None else (stance >= 0).astype(np.float32)
    for name, factor in factors.items():
        weights[(sources == name) & (stance >= 0)] *= factor
    return weights


def batch_order(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, group: bool
) -> list[list[int]]:
    """Seeded batches for one epoch; with ``group``, examples of similar length share a batch."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    if group:
        chunk = batch_size * 50
        order = np.concatenate(
            [
                order[i : i + chunk][np.argsort(lengths[order[i : i + chunk]], kind="stable")]
                for i in range(0, len(order), chunk)
            ]
        )
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches
