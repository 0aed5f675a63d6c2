"""What a training recipe becomes once its corpora are loaded, before a model is built.

:func:`check_recipe` refuses a recipe that asks of its data what the data does not have
(stance offsets without a dev split to fit them on, a stance loss weight without stance
rows, reply offsets without a labelled reply), before hours of training rather than
after; :func:`model_config_for` narrows the recipe's model config to the labels the
training mix teaches, so that a model outputs exactly what it learned. The
:class:`~training.trainer.Trainer` runs both in its setup.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import datasets

from classifier.model.config import ModelConfig
from training.config import TrainConfig
from training.mixing import (
    CorpusData,
    both_kinds,
    head_classes,
    head_dev_splits,
    learned_labels,
    learned_span_labels,
)
from training.offsets import labelled_replies

logger = logging.getLogger(__name__)


def check_recipe(config: TrainConfig, corpora: Sequence[CorpusData]) -> None:
    """Raise ``ValueError`` for what the recipe asks of data it does not have: offsets
    with no dev split to fit them on, a stance loss weight with no stance rows. Checked
    before the model is built, not after hours of training."""
    for head in config.stance_offsets:
        if not head_dev_splits(config.model, head, corpora):
            raise ValueError(
                f"stance_offsets: stance head {head!r} has no corpus with a dev split with "
                "stance labels to fit its offsets on"
            )
    for entry, data in zip(config.corpora, corpora, strict=True):
        if entry.stance_loss_weight != 1.0 and (
            data.train is None or not any(v >= 0 for v in data.train["stance"])
        ):
            raise ValueError(
                f"corpus {entry.name}: stance_loss_weight {entry.stance_loss_weight!r} has "
                "nothing to weigh: its training rows have no stance labels"
            )
    if config.reply_offsets:
        comment_head = config.model.heads[0].name
        dev = head_dev_splits(config.model, comment_head, corpora)
        if not any(labelled_replies(split).any() for _, split in dev):
            raise ValueError(
                f"reply_offsets: no dev split of the comment head {comment_head!r} has a "
                "labelled reply (a row with a context) to fit them on"
            )


def model_config_for(config: TrainConfig, train_data: datasets.Dataset) -> ModelConfig:
    """The recipe's model config narrowed to the labels ``train_data`` teaches.

    A model outputs exactly what it learned: the recipe's stance classes, toxicity,
    span and constructive labels that the mix has both kinds of examples of (a head
    with no data at all keeps the recipe's labels, untrained, with a warning).
    """
    stance_labels, toxicity_labels = learned_labels(train_data)
    stance_labels = tuple(n for n in config.model.stance_labels if n in stance_labels)
    toxicity_labels = tuple(n for n in config.model.toxicity_labels if n in toxicity_labels)
    if len(stance_labels) < 2:
        stance_labels = config.model.stance_labels  # no stance data: head stays untrained
        logger.warning("the recipe has no stance corpus; the stance head is not trained")
    if not toxicity_labels:
        toxicity_labels = config.model.toxicity_labels  # no toxicity data: head stays untrained
        logger.warning("the recipe has no toxicity corpus; the toxicity head is not trained")
    heads = config.model.stance_heads
    if heads:
        heads = head_classes(train_data, config.model, stance_labels)
    span_labels = learned_span_labels(train_data, config.model.span_labels)
    if span_labels and "toxicity" not in span_labels:
        span_labels = ()
    constructive_labels = tuple(
        n
        for n in both_kinds(train_data, config.model.constructive_labels)
        if n in config.model.constructive_labels
    )
    for kind, asked, found in (
        ("span", config.model.span_labels, span_labels),
        ("constructive", config.model.constructive_labels, constructive_labels),
    ):
        if set(asked) - set(found):
            logger.warning(
                "no training data for %s labels %s", kind, sorted(set(asked) - set(found))
            )
    model_config = config.model.replace(
        stance_labels=stance_labels,
        toxicity_labels=toxicity_labels,
        stance_heads=heads,
        span_labels=span_labels,
        constructive_labels=constructive_labels,
    )
    logger.info(
        "labels learned: stance %s, toxicity %s, spans %s, constructive %s",
        stance_labels,
        toxicity_labels,
        span_labels,
        constructive_labels,
    )
    return model_config
