"""Scoring the dev splits: what checkpoints are chosen on during training and what
stance offsets are fitted on after it.

Predictions go through :class:`~classifier.model.torch_predictor.Predictor`, the path ``threadguard
score`` uses, so a dev figure is what the saved model will do.
"""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import numpy as np

from classifier.model.network import ThreadguardModel
from classifier.model.predictor import PredictOptions
from classifier.model.torch_predictor import Predictor
from training.metrics import dev_metrics
from training.mixing import CorpusData


def predict_dataset(
    model: ThreadguardModel,
    dataset: datasets.Dataset,
    batch_size: int,
    stance_head: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Stance [N, S] and toxicity [N, T] probabilities for a common-format split.

    Goes through :class:`~classifier.model.torch_predictor.Predictor`, the path ``threadguard
    score`` uses, and leaves the model in the mode it found it in. ``stance_head``
    names the head whose stance is returned (default: the comment output).
    """
    was_training = model.training
    rows = dataset.select_columns(["target", "context", "text"])
    try:
        options = PredictOptions(batch_size=batch_size)
        predictor = Predictor(model, device=model.device, options=options)
        found = predictor.score_arrays(rows, stance_head=stance_head)
        return found.stance, found.toxicity
    finally:
        model.train(was_training)


def evaluate_dev(
    model: ThreadguardModel,
    corpora: Sequence[CorpusData],
    batch_size: int,
    score_corpora: Sequence[str] = (),
) -> dict[str, float]:
    """Dev metrics per corpus and ``dev/score``, the mean primary metric of
    ``score_corpora`` (default: of every corpus)."""
    metrics: dict[str, float] = {}
    primaries = []
    for data in corpora:
        if data.dev is None or len(data.dev) == 0:
            continue
        head = model.config.head_for(data.name)
        stance, toxicity = predict_dataset(model, data.dev, batch_size, head)
        found = dev_metrics(
            data.dev, stance, toxicity, model.stance_labels, model.toxicity_labels, data.name
        )
        for key, value in found.items():
            metrics[f"dev/{data.name}/{key}"] = value
        if "primary" in found and (not score_corpora or data.name in score_corpora):
            primaries.append(found["primary"])
    if primaries:
        metrics["dev/score"] = float(np.mean(primaries))
    return metrics
