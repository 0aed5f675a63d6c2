"""One result of an evaluation: every metric of one model on one dataset split.

:func:`measure` scores stance and toxicity (with the most confident errors, and the
unintended-bias figures where the corpus has identity subgroups) and keeps what the
bootstrap and the plots need (:class:`Measured`); :func:`measure_heads` scores the span
and constructiveness heads. :class:`Settings` are the options of the run they read.
Scoring every dataset with every model, the bootstrap, the comparisons and the report
are the driver's, :mod:`training.evaluate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from classifier.labels import CONSTRUCTIVE_LABELS, STANCE_LABELS, TOXICITY_LABELS
from training.baselines import Scores
from training.bootstrap import PrimaryData, constructive_metrics
from training.metrics import (
    CalibrationTarget,
    bias_metrics,
    primary_for,
    stance_metrics,
    toxicity_metrics,
)
from training.span_eval import evaluate_spans


@dataclass
class Settings:
    """Options of an evaluation run (see :func:`run_evaluation`)."""

    data_root: str | Path | None = None
    max_examples: int | None = None
    bootstrap: int = 1000
    seed: int = 0
    threshold: float = 0.5
    label_thresholds: dict[str, float] = field(default_factory=dict)
    calibrate: CalibrationTarget | None = None
    tune_thresholds: bool = False
    actions: dict[str, str] = field(default_factory=dict)
    default_action: str = "review"
    batch_size: int = 32
    device: str = "cpu"
    plots: bool = True
    n_errors: int = 20
    command: list[str] | None = None

    def threshold_for(self, label: str) -> float:
        """The decision threshold of ``label``."""
        return self.label_thresholds.get(label, self.threshold)


def _clip(text: str, n: int = 300) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@dataclass
class Measured:
    """Metrics of one (model, dataset), plus what plots and bootstrap need."""

    result: dict[str, Any]
    primary: PrimaryData | None = None
    stance_cm: tuple[list[str], np.ndarray] | None = None
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def measure(
    corpus: str,
    data: datasets.Dataset,
    scores: Scores,
    settings: Settings,
    subgroups: Mapping[str, np.ndarray] | None = None,
) -> Measured:
    """Every metric of one model on one split (``result`` is JSON-ready)."""
    primary = primary_for(corpus)
    result: dict[str, Any] = {}
    out = Measured(result)
    texts, targets, ids = data["text"], data["target"], data["id"]
    # stance, over the corpus's classes the model has
    stance = np.asarray(data["stance"])
    has = np.flatnonzero(stance >= 0)
    if len(has):
        found_classes = {c for row in data["stance_classes"] for c in row}
        classes = sorted(found_classes or set(scores.stance_labels), key=STANCE_LABELS.index)
        cols = [scores.stance_labels.index(c) for c in classes if c in scores.stance_labels]
        if scores.stance is None or not cols:
            result["stance"] = {"skipped": "the model has no stance output"}
        else:
            probs = scores.stance[has][:, cols]
            probs = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
            names = [scores.stance_labels[c] for c in cols]
            pred_i = np.argmax(probs, axis=1)
            pred = [names[i] for i in pred_i]
            gold = [STANCE_LABELS[s] for s in stance[has]]
            found = stance_metrics(gold, pred, classes, corpus)
            found["missing_classes"] = [c for c in classes if c not in names]
            wrong = np.flatnonzero(np.asarray(gold) != np.asarray(pred))
            conf = probs[np.arange(len(has)), pred_i]
            order = wrong[np.argsort(-conf[wrong], kind="stable")][: settings.n_errors]
            found["confident_errors"] = [
                {"id": ids[has[i]], "text": _clip(texts[has[i]]), "target": _clip(targets[has[i]]),
                 "gold": gold[i], "predicted": pred[i], "confidence": float(conf[i])}
                for i in order
            ]  # fmt: skip
            result["stance"] = found
            out.stance_cm = (classes, np.asarray(found["confusion_matrix"]))
            if primary.label is None:
                index = {c: k for k, c in enumerate(classes)}
                labels = (
                    (index["support"], index["deny"]) if primary.kind == "f1_avg" else
                    tuple(range(len(classes)))
                )  # fmt: skip
                out.primary = PrimaryData(
                    primary.kind,
                    np.asarray([index[g] for g in gold]),
                    pred=np.asarray([index[p] for p in pred]),
                    labels=labels,
                    n_classes=len(classes),
                )
    # toxicity, per label the corpus annotates
    tox: dict[str, Any] = {}
    for label in TOXICITY_LABELS:
        values = np.asarray(data[label], dtype=np.float32)
        known = np.flatnonzero(values >= 0)
        if not len(known):
            continue
        if label not in scores.toxicity_labels or scores.toxicity is None:
            tox[label] = {"skipped": "the model does not predict this label"}
            continue
        y = (values[known] >= 0.5).astype(int)
        prob = scores.toxicity[known, scores.toxicity_labels.index(label)].astype(float)
        threshold = settings.threshold_for(label)
        found = toxicity_metrics(y, prob, threshold)
        if label == (primary.label or "toxicity"):
            if subgroups is not None:
                found["bias"] = bias_metrics(y, prob, {k: m[known] for k, m in subgroups.items()})
            pred = prob >= threshold
            wrong = np.flatnonzero(pred != y.astype(bool))
            conf = np.where(pred, prob, 1 - prob)
            order = wrong[np.argsort(-conf[wrong], kind="stable")][: settings.n_errors]
            found["confident_errors"] = [
                {"id": ids[known[i]], "text": _clip(texts[known[i]]), "gold": float(values[known[i]]),
                 "score": float(prob[i]), "predicted": bool(pred[i])}
                for i in order
            ]  # fmt: skip
        tox[label] = found
        out.curves[label] = (y, prob)
        if label == primary.label:
            if primary.kind == "roc_auc":
                out.primary = PrimaryData("roc_auc", y, prob=prob) if 0 < y.sum() < len(y) else None
            else:
                pred_int = (prob >= threshold).astype(int)
                out.primary = PrimaryData(
                    primary.kind, y, pred=pred_int, labels=(0, 1), n_classes=2
                )
    if tox:
        result["toxicity"] = tox
    value = out.primary.value() if out.primary is not None else None
    result["primary"] = {"metric": primary.title, "value": value, "ci": None}
    return out


def measure_heads(
    split: str, data: datasets.Dataset, scores: Scores, settings: Settings
) -> dict[str, Any]:
    """Figures of a model's span and constructiveness heads, where it gave them
    (:meth:`training.baselines.TransformerScorer.score`; nothing otherwise):
    ``spans``, SemEval-2021 Task 5's span F1 against the official gold of ``split``
    (:func:`training.span_eval.evaluate_spans`), and ``constructive``, the ROC-AUC and F1
    of C3's constructive_binary at the ``constructive`` decision threshold (default
    0.5) and the AUC of each characteristic (:func:`training.bootstrap.constructive_metrics`),
    with bootstrap intervals as the settings say."""
    out: dict[str, Any] = {}
    if scores.spans is not None:
        out["spans"] = evaluate_spans(
            data["id"], data["text"], scores.spans, split, settings.data_root,
            settings.bootstrap, settings.seed,
        )  # fmt: skip
    if scores.constructive is not None and scores.constructive_labels:
        gold = {n: np.asarray(data[n], dtype=float) for n in CONSTRUCTIVE_LABELS}
        if (gold["constructive"] >= 0).any():
            out["constructive"] = constructive_metrics(
                gold, scores.constructive, scores.constructive_labels,
                settings.threshold_for("constructive"), settings.bootstrap, settings.seed,
            )  # fmt: skip
    return out
