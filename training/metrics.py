"""Dev-split metrics the trainer selects checkpoints by (scikit-learn does the arithmetic).

Stance is scored over the classes the corpus annotates, predicting the most
probable of those (a RumourEval post cannot be ``unrelated``); toxicity per
label over the examples whose label is known, binarised at 0.5 for soft
labels. A corpus's ``primary`` metric is its stance macro-F1, or the mean
ROC-AUC of its toxicity labels when it has no stance.
"""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

from classifier.labels import STANCE_LABELS


def stance_metrics(
    gold: Sequence[int], probs: np.ndarray, model_labels: Sequence[str], classes: Sequence[str]
) -> dict[str, float]:
    """Macro-F1 and accuracy over ``classes`` (names); ``gold`` indexes STANCE_LABELS."""
    cols = [model_labels.index(c) for c in classes if c in model_labels]
    names = [model_labels[c] for c in cols]
    y = np.asarray([STANCE_LABELS[g] for g in gold])
    pred = np.asarray(names)[np.argmax(probs[:, cols], axis=1)]
    out = {
        "stance_macro_f1": float(f1_score(y, pred, labels=names, average="macro", zero_division=0)),
        "stance_accuracy": float(np.mean(y == pred)),
    }
    per_class = f1_score(y, pred, labels=names, average=None, zero_division=0)
    out.update({f"stance_f1_{n}": float(v) for n, v in zip(names, per_class, strict=True)})
    return out


def toxicity_metrics(gold: np.ndarray, probs: np.ndarray, label: str) -> dict[str, float]:
    """ROC-AUC (when both classes occur) and F1 at 0.5 for one label."""
    y = (gold >= 0.5).astype(int)
    out = {f"{label}_f1": float(f1_score(y, probs >= 0.5, zero_division=0))}
    if 0 < y.sum() < len(y):
        out[f"{label}_auc"] = float(roc_auc_score(y, probs))
    return out


def dev_metrics(
    dev: datasets.Dataset,
    stance_probs: np.ndarray,
    toxicity_probs: np.ndarray,
    stance_labels: Sequence[str],
    toxicity_labels: Sequence[str],
) -> dict[str, float]:
    """Every metric for one corpus's split, plus ``primary`` (see the module docstring)."""
    out: dict[str, float] = {}
    stance = np.asarray(dev["stance"])
    has = stance >= 0
    if has.any():
        classes = sorted(
            {c for row in dev["stance_classes"] for c in row} or set(stance_labels),
            key=STANCE_LABELS.index,
        )
        out.update(stance_metrics(stance[has].tolist(), stance_probs[has], stance_labels, classes))
        out["primary"] = out["stance_macro_f1"]
    aucs = []
    for j, name in enumerate(toxicity_labels):
        gold = np.asarray(dev[name], dtype=np.float32)
        known = gold >= 0
        if not known.any():
            continue
        found = toxicity_metrics(gold[known], toxicity_probs[known, j], name)
        out.update(found)
        if f"{name}_auc" in found:
            aucs.append(found[f"{name}_auc"])
    if "primary" not in out and aucs:
        out["primary"] = float(np.mean(aucs))
    return out
