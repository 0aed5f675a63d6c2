"""Metrics, each as its task's literature defines it (scikit-learn does the arithmetic).

Used by ``threadguard evaluate`` (:mod:`training.evaluate`) for reports, and by
the trainer (:func:`dev_metrics`) to choose checkpoints on dev splits, so a
checkpoint is chosen by the same primary metric its report shows.

Stance is scored over the classes the corpus annotates, predicting the most
probable of those (a RumourEval post cannot be ``unrelated``).

This module holds the point metrics of one split (the primary metric per corpus,
stance, toxicity, calibration error, unintended bias, the dev figures) and the
target a dev-chosen threshold must meet (:class:`CalibrationTarget`, which the CLI
parses). Their bootstrap intervals, and the figures reported with intervals, are in
:mod:`training.bootstrap`; choosing the thresholds on dev splits is
:mod:`training.thresholds`. Split so that each module has one job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import datasets
import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from classifier.labels import STANCE_LABELS
from training.corpora import CORPORA

PrimaryKind = Literal["macro_f1", "f1_avg", "binary_macro_f1", "roc_auc"]


# --------------------------------------------------------------------------- per corpus


@dataclass(frozen=True)
class Primary:
    """A corpus's primary metric: ``kind`` on stance (``label`` None) or on one label."""

    kind: PrimaryKind
    title: str
    label: str | None = None


#: Primary metric per corpus (docs/evaluation.md says why); others: stance
#: macro-F1, or ROC-AUC of ``toxicity``.
PRIMARY: dict[str, Primary] = {
    "rumoureval2019": Primary("macro_f1", "macro-F1 (SDQC)"),
    "semeval2016_stance": Primary("f1_avg", "F1avg(favor, against)"),
    "fnc1": Primary("macro_f1", "macro-F1"),
    "arc": Primary("macro_f1", "macro-F1"),
    "olid": Primary("binary_macro_f1", "macro-F1 of toxicity (OFF/NOT)", "toxicity"),
    "hateval2019": Primary("binary_macro_f1", "macro-F1 of identity_attack (hate)", "identity_attack"),
    "youtube_spam": Primary("roc_auc", "ROC-AUC of spam", "spam"),
    "ethos": Primary("roc_auc", "ROC-AUC of identity_attack (isHate)", "identity_attack"),
}  # fmt: skip

#: Corpora scored with the official FNC-1 weighted score next to macro-F1.
FNC_CORPORA = frozenset({"fnc1", "arc"})
#: Corpora scored with SemEval-2016's F1avg(favor, against).
F1_AVG_CORPORA = frozenset({"semeval2016_stance"})
#: Identity-mention fraction from which a Civil Comments row is in a subgroup (Jigsaw's).
IDENTITY_THRESHOLD = 0.5


def primary_for(corpus: str) -> Primary:
    """The primary metric of ``corpus``."""
    if corpus in PRIMARY:
        return PRIMARY[corpus]
    if corpus in CORPORA and CORPORA[corpus].task == "stance":
        return Primary("macro_f1", "macro-F1")
    return Primary("roc_auc", "ROC-AUC of toxicity", "toxicity")


# --------------------------------------------------------------------------- metrics


def fnc_score(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    """The official FNC-1 weighted score (our names: support/deny/comment/unrelated).

    +0.25 for each correct related/unrelated decision, +0.75 more when a related
    pair's stance is right. ``relative`` is the score over the best achievable, in %.
    """
    g, p = np.asarray(gold), np.asarray(pred)
    g_rel, p_rel = g != "unrelated", p != "unrelated"
    score = 0.25 * np.sum(g_rel == p_rel) + 0.75 * np.sum(g_rel & (g == p))
    best = 0.25 * len(g) + 0.75 * np.sum(g_rel)
    return {
        "score": float(score),
        "max_score": float(best),
        "relative": float(100 * score / best) if best else float("nan"),
    }


def f1_avg(gold: Sequence[str], pred: Sequence[str]) -> float:
    """SemEval-2016 Task 6's F1avg: mean of F1(favor) and F1(against), all targets pooled."""
    return float(f1_score(gold, pred, labels=["support", "deny"], average="macro", zero_division=0))


def stance_metrics(
    gold: Sequence[str], pred: Sequence[str], classes: Sequence[str], corpus: str = ""
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class P/R/F1, confusion matrix (rows gold, columns
    predicted, in ``classes`` order) and the corpus's official extra score."""
    classes = list(classes)
    prec, rec, f1, support = precision_recall_fscore_support(
        gold, pred, labels=classes, zero_division=0
    )
    out: dict[str, Any] = {
        "n": len(gold),
        "classes": classes,
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": float(f1_score(gold, pred, labels=classes, average="macro", zero_division=0)),
        "per_class": {
            c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, prec, rec, f1, support, strict=True)
        },
        "confusion_matrix": confusion_matrix(gold, pred, labels=classes).tolist(),
    }
    if corpus in F1_AVG_CORPORA:
        out["f1_avg"] = f1_avg(gold, pred)
    if corpus in FNC_CORPORA:
        out["fnc"] = fnc_score(gold, pred)
    return out


def _bins(prob: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each probability, as :func:`sklearn.calibration.calibration_curve` bins them."""
    return np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], prob)


def reliability(y: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> dict[str, list[float]]:
    """Reliability diagram points (non-empty equal-width bins): mean predicted
    probability, fraction positive, and examples per bin."""
    prob_true, prob_pred = calibration_curve(y, prob, n_bins=n_bins, strategy="uniform")
    counts = np.bincount(_bins(prob, n_bins), minlength=n_bins)
    return {
        "prob_pred": prob_pred.tolist(),
        "prob_true": prob_true.tolist(),
        "count": counts[counts > 0].tolist(),
    }


def expected_calibration_error(y: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> float:
    """ECE: |fraction positive − mean probability| per equal-width bin, weighted by
    the bin's share of examples."""
    curve = reliability(y, prob, n_bins)
    counts = np.asarray(curve["count"], dtype=float)
    gaps = np.abs(np.asarray(curve["prob_true"]) - np.asarray(curve["prob_pred"]))
    return float(np.sum(counts * gaps) / counts.sum()) if counts.sum() else float("nan")


def toxicity_metrics(y: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """One label: ROC-AUC and average precision (None when only one class occurs),
    precision/recall/F1 of the positive class and binary macro-F1 at ``threshold``,
    ECE and reliability diagram points. ``y`` is 0/1."""
    y = np.asarray(y).astype(int)
    pred = (np.asarray(prob) >= threshold).astype(int)
    both = 0 < y.sum() < len(y)
    prec, rec, f1, _ = precision_recall_fscore_support(
        y, pred, labels=[1], average=None, zero_division=0
    )
    return {
        "n": len(y),
        "positives": int(y.sum()),
        "threshold": float(threshold),
        "roc_auc": float(roc_auc_score(y, prob)) if both else None,
        "average_precision": float(average_precision_score(y, prob)) if y.any() else None,
        "precision": float(prec[0]),
        "recall": float(rec[0]),
        "f1": float(f1[0]),
        "macro_f1": float(f1_score(y, pred, labels=[0, 1], average="macro", zero_division=0)),
        "ece": expected_calibration_error(y, prob),
        "reliability": reliability(y, prob),
    }


def power_mean(values: Sequence[float], p: float) -> float:
    """Generalised mean with exponent ``p`` (NaNs left out)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if not len(v):
        return float("nan")
    if p < 0 and (v == 0).any():  # the limit: one zero makes a negative-power mean zero
        return 0.0
    return float(np.mean(v**p) ** (1 / p))


def _auc_or_nan(y: np.ndarray, prob: np.ndarray) -> float:
    return float(roc_auc_score(y, prob)) if 0 < y.sum() < len(y) else float("nan")


def bias_metrics(
    y: np.ndarray,
    prob: np.ndarray,
    subgroups: Mapping[str, np.ndarray],
    *,
    power: float = -5.0,
    overall_weight: float = 0.25,
) -> dict[str, Any]:
    """Jigsaw Unintended Bias metrics (Borkan et al. 2019) for one label.

    Per subgroup (a boolean mask of the examples mentioning it): subgroup AUC
    (subgroup only), BPSN AUC (background positives + subgroup negatives), BNSP
    AUC (background negatives + subgroup positives). ``final`` = ``overall_weight``
    × overall AUC + (1 − ``overall_weight``) × the mean over the three of the
    power mean (``power``) of their per-subgroup values; a subgroup where an AUC
    is undefined (one class only) is left out of that power mean.
    """
    y = np.asarray(y).astype(bool)
    prob = np.asarray(prob, dtype=float)
    per: dict[str, dict[str, Any]] = {}
    for name, mask in subgroups.items():
        mask = np.asarray(mask, dtype=bool)
        bpsn = (~mask & y) | (mask & ~y)
        bnsp = (~mask & ~y) | (mask & y)
        per[name] = {
            "n": int(mask.sum()),
            "positives": int((mask & y).sum()),
            "subgroup_auc": _auc_or_nan(y[mask], prob[mask]),
            "bpsn_auc": _auc_or_nan(y[bpsn], prob[bpsn]),
            "bnsp_auc": _auc_or_nan(y[bnsp], prob[bnsp]),
        }
    overall = _auc_or_nan(y, prob)
    means = {
        k: power_mean([v[k] for v in per.values()], power)
        for k in ("subgroup_auc", "bpsn_auc", "bnsp_auc")
    }
    bias = float(np.mean(list(means.values()))) if per else float("nan")
    return {
        "overall_auc": overall,
        "power": power,
        "power_means": means,
        "final": overall_weight * overall + (1 - overall_weight) * bias,
        "subgroups": per,
    }


# --------------------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class CalibrationTarget:
    """``precision``: lowest threshold whose dev precision reaches ``value``;
    ``budget``: lowest threshold that holds at most ``value`` of the dev comments."""

    kind: Literal["precision", "budget"]
    value: float

    @classmethod
    def parse(cls, text: str) -> CalibrationTarget:
        """Parse ``precision=0.9`` or ``budget=0.05``."""
        key, sep, value = text.partition("=")
        key = key.strip()
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not sep or key not in ("precision", "budget") or not 0 < number <= 1:
            raise ValueError(
                f"expected precision=P or budget=B with a number in (0, 1], got {text!r}"
            )
        return cls(key, number)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- training


def corpus_classes(data: datasets.Dataset, model_labels: Sequence[str]) -> list[str]:
    """The stance classes a split's corpus annotates (all the model's when it does not say)."""
    named = {c for row in data["stance_classes"] for c in row}
    return [c for c in STANCE_LABELS if c in (named or set(model_labels))]


def stance_predictions(
    probs: np.ndarray, model_labels: Sequence[str], classes: Sequence[str]
) -> list[str]:
    """The most probable of ``classes`` for each row of ``probs`` (columns: ``model_labels``).

    A class the model lacks is never predicted.
    """
    cols = [model_labels.index(c) for c in classes if c in model_labels]
    names = np.asarray([model_labels[c] for c in cols])
    return names[np.argmax(probs[:, cols], axis=1)].tolist()


def dev_metrics(
    dev: datasets.Dataset,
    stance_probs: np.ndarray,
    toxicity_probs: np.ndarray,
    stance_labels: Sequence[str],
    toxicity_labels: Sequence[str],
    corpus: str = "",
) -> dict[str, float]:
    """Headline figures of one corpus's dev split, and ``primary``: its primary metric
    (:func:`primary_for`), which the trainer averages to choose checkpoints."""
    out: dict[str, float] = {}
    stance = np.asarray(dev["stance"])
    has = stance >= 0
    if has.any():
        classes = corpus_classes(dev, stance_labels)
        gold = [STANCE_LABELS[i] for i in stance[has]]
        pred = stance_predictions(stance_probs[has], stance_labels, classes)
        found = stance_metrics(gold, pred, classes, corpus)
        out["stance_macro_f1"] = found["macro_f1"]
        out["stance_accuracy"] = found["accuracy"]
        out.update({f"stance_f1_{c}": v["f1"] for c, v in found["per_class"].items()})
        if "f1_avg" in found:
            out["stance_f1_avg"] = found["f1_avg"]
    for j, name in enumerate(toxicity_labels):
        gold_t = np.asarray(dev[name], dtype=np.float32)
        known = gold_t >= 0
        if not known.any():
            continue
        found = toxicity_metrics((gold_t[known] >= 0.5).astype(int), toxicity_probs[known, j])
        out[f"{name}_macro_f1"] = found["macro_f1"]
        if found["roc_auc"] is not None:
            out[f"{name}_auc"] = found["roc_auc"]
    primary = primary_for(corpus)
    key = {
        "macro_f1": "stance_macro_f1",
        "f1_avg": "stance_f1_avg",
        "binary_macro_f1": f"{primary.label}_macro_f1",
        "roc_auc": f"{primary.label}_auc",
    }[primary.kind]
    if key in out:
        out["primary"] = out[key]
    return out
