"""Metrics, each as its task's literature defines it (scikit-learn does the arithmetic).

Used by ``threadguard evaluate`` (:mod:`training.evaluate`) for reports, and by
the trainer (:func:`dev_metrics`) to choose checkpoints on dev splits, so a
checkpoint is chosen by the same primary metric its report shows.

Stance is scored over the classes the corpus annotates, predicting the most
probable of those (a RumourEval post cannot be ``unrelated``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
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
    precision_recall_curve,
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


# --------------------------------------------------------------------------- bootstrap


def bootstrap_indices(
    n: int, n_resamples: int, seed: int, max_elements: int = 2_000_000
) -> Iterator[np.ndarray]:
    """Resamples of ``range(n)`` with replacement, in chunks ``[b, n]``; the same
    ``(n, n_resamples, seed)`` always gives the same resamples (so models scored
    on the same split are compared on the same resamples: a paired bootstrap)."""
    rng = np.random.default_rng(seed)
    step = max(1, max_elements // max(n, 1))
    for start in range(0, n_resamples, step):
        yield rng.integers(0, n, size=(min(step, n_resamples - start), n))


def macro_f1_resampled(
    gold: np.ndarray, pred: np.ndarray, labels: Sequence[int], n_classes: int, idx: np.ndarray
) -> np.ndarray:
    """Macro-F1 over ``labels`` (class ids) for each resample (row of ``idx``), as
    sklearn's ``f1_score(average="macro", zero_division=0)`` computes it."""
    b = idx.shape[0]
    codes = np.asarray(gold) * n_classes + np.asarray(pred)
    flat = (np.arange(b)[:, None] * n_classes * n_classes + codes[idx]).ravel()
    cm = np.bincount(flat, minlength=b * n_classes * n_classes).reshape(b, n_classes, n_classes)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    denom = cm.sum(axis=1) + cm.sum(axis=2)  # 2TP + FP + FN
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denom > 0, 2 * tp / denom, 0.0)
    return np.asarray(f1[:, list(labels)].mean(axis=1))


def roc_auc_resampled(y: np.ndarray, prob: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """ROC-AUC (ties count one half, as sklearn) for each resample; NaN where a
    resample has one class only."""
    b = idx.shape[0]
    _, group = np.unique(prob, return_inverse=True)
    n_groups = int(group.max()) + 1 if len(group) else 0
    flat = np.arange(b)[:, None] * n_groups + group[idx]
    pos_mask = np.asarray(y, dtype=bool)[idx]
    pos = np.bincount(flat[pos_mask], minlength=b * n_groups).reshape(b, n_groups)
    neg = np.bincount(flat[~pos_mask], minlength=b * n_groups).reshape(b, n_groups)
    below = np.cumsum(neg, axis=1) - neg
    num = (pos * (below + 0.5 * neg)).sum(axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


@dataclass
class PrimaryData:
    """What the primary metric of one (model, dataset) is computed from: class ids
    (``gold``, ``pred``, ``labels`` averaged over, ``n_classes``) for F1 kinds, or
    ``gold`` 0/1 and ``prob`` for ROC-AUC."""

    kind: PrimaryKind
    gold: np.ndarray
    pred: np.ndarray | None = None
    prob: np.ndarray | None = None
    labels: tuple[int, ...] = ()
    n_classes: int = 0

    def resampled(self, idx: np.ndarray) -> np.ndarray:
        """The metric on each resample (rows of ``idx``)."""
        if self.kind == "roc_auc":
            assert self.prob is not None
            return roc_auc_resampled(self.gold, self.prob, idx)
        assert self.pred is not None
        return macro_f1_resampled(self.gold, self.pred, self.labels, self.n_classes, idx)

    def value(self) -> float:
        """The metric on the split itself."""
        return float(self.resampled(np.arange(len(self.gold))[None, :])[0])


def bootstrap_samples(data: PrimaryData, n_resamples: int, seed: int) -> np.ndarray:
    """The primary metric on ``n_resamples`` resamples of the examples."""
    if n_resamples <= 0 or len(data.gold) == 0:
        return np.zeros(0)
    parts = [data.resampled(idx) for idx in bootstrap_indices(len(data.gold), n_resamples, seed)]
    return np.concatenate(parts)


def bootstrap_mean(values: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """The mean of per-example ``values`` (e.g. SemEval-2021 Task 5's per-post span F1)
    on ``n_resamples`` resamples, drawn by :func:`bootstrap_indices` (so the same split
    and seed pair the resamples of every model)."""
    values = np.asarray(values, dtype=float)
    if n_resamples <= 0 or len(values) == 0:
        return np.zeros(0)
    parts = [values[idx].mean(axis=1) for idx in bootstrap_indices(len(values), n_resamples, seed)]
    return np.concatenate(parts)


def binary_scores(
    y: np.ndarray, prob: np.ndarray, threshold: float = 0.5, n_resamples: int = 0, seed: int = 0
) -> dict[str, Any]:
    """A binary task's ROC-AUC, the F1 of the positive class and the binary macro-F1 at
    ``threshold``, each with a 95 % percentile bootstrap interval over the same
    ``n_resamples`` resamples (None without resamples, and the AUC's when one class is
    missing). ``y`` is 0/1."""
    y = np.asarray(y).astype(int)
    prob = np.asarray(prob, dtype=float)
    pred = (prob >= threshold).astype(int)
    both = 0 < y.sum() < len(y)
    every = np.arange(len(y))[None, :]
    out: dict[str, Any] = {
        "n": len(y),
        "positives": int(y.sum()),
        "threshold": float(threshold),
        "roc_auc": float(roc_auc_resampled(y, prob, every)[0]) if both else None,
        "f1": float(macro_f1_resampled(y, pred, (1,), 2, every)[0]) if len(y) else None,
        "macro_f1": float(macro_f1_resampled(y, pred, (0, 1), 2, every)[0]) if len(y) else None,
        "roc_auc_ci": None,
        "f1_ci": None,
        "macro_f1_ci": None,
    }
    if n_resamples <= 0 or not len(y):
        return out
    aucs, f1s, macros = [], [], []
    for idx in bootstrap_indices(len(y), n_resamples, seed):
        if both:
            aucs.append(roc_auc_resampled(y, prob, idx))
        f1s.append(macro_f1_resampled(y, pred, (1,), 2, idx))
        macros.append(macro_f1_resampled(y, pred, (0, 1), 2, idx))
    if aucs:
        out["roc_auc_ci"] = percentile_ci(np.concatenate(aucs))
    out["f1_ci"] = percentile_ci(np.concatenate(f1s))
    out["macro_f1_ci"] = percentile_ci(np.concatenate(macros))
    return out


#: Fewest positives a C3 characteristic needs when binarised at a share of 0.5 (half its
#: raters named it); with fewer, it is binarised at > 0 (any rater named it) instead.
MIN_CHARACTERISTIC_POSITIVES = 30


def characteristic_target(
    shares: np.ndarray, min_positives: int = MIN_CHARACTERISTIC_POSITIVES
) -> tuple[np.ndarray, str]:
    """0/1 gold for a constructiveness characteristic from the share of raters who named
    it, and the rule used: ``">= 0.5"`` (at least half the raters) when that leaves
    ``min_positives`` positives, else ``"> 0"`` (any rater): most characteristics are
    named by a minority of a comment's five raters, so a strict majority can leave too
    few positives for a stable AUC."""
    shares = np.asarray(shares, dtype=float)
    y = (shares >= 0.5).astype(int)
    if y.sum() >= min_positives:
        return y, ">= 0.5"
    return (shares > 0).astype(int), "> 0"


def constructive_metrics(
    gold: Mapping[str, np.ndarray],
    probs: np.ndarray,
    labels: Sequence[str],
    threshold: float = 0.5,
    n_resamples: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """A constructiveness head on C3: :func:`binary_scores` of ``constructive_binary``
    (C3's own: more than half the raters judged the comment constructive) from the
    ``constructive`` column of ``probs`` [N, C] (columns named by ``labels``), and the
    ROC-AUC of every characteristic the head has, binarised by
    :func:`characteristic_target`. ``gold`` maps each label to the raters' shares, -1
    where unknown; rows with an unknown ``constructive`` are left out."""
    known = np.asarray(gold["constructive"], dtype=float) >= 0
    probs = np.asarray(probs, dtype=float)[known]
    column = list(labels).index("constructive")
    y = (np.asarray(gold["constructive"], dtype=float)[known] > 0.5).astype(int)
    out: dict[str, Any] = {
        "constructive_binary": binary_scores(y, probs[:, column], threshold, n_resamples, seed),
        "characteristics": {},
    }
    for k, name in enumerate(labels):
        if name == "constructive" or name not in gold:
            continue
        shares = np.asarray(gold[name], dtype=float)[known]
        has = shares >= 0
        target, rule = characteristic_target(shares[has])
        both = 0 < target.sum() < len(target)
        auc = roc_auc_resampled(target, probs[has, k], np.arange(len(target))[None, :])[0]
        ci = None
        if both and n_resamples > 0:
            parts = [
                roc_auc_resampled(target, probs[has, k], idx)
                for idx in bootstrap_indices(len(target), n_resamples, seed)
            ]
            ci = percentile_ci(np.concatenate(parts))
        out["characteristics"][name] = {
            "n": len(target),
            "positives": int(target.sum()),
            "binarised": rule,
            "roc_auc": float(auc) if both else None,
            "roc_auc_ci": ci,
        }
    return out


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> list[float] | None:
    """Percentile confidence interval of bootstrap ``samples`` (NaNs left out)."""
    samples = samples[~np.isnan(samples)]
    if not len(samples):
        return None
    alpha = (1 - level) / 2
    lo, hi = np.percentile(samples, [100 * alpha, 100 * (1 - alpha)])
    return [float(lo), float(hi)]


def paired_difference(
    reference: np.ndarray, other: np.ndarray, point: float, level: float = 0.95
) -> dict[str, Any]:
    """``other − reference`` on paired resamples: its CI and the two-sided bootstrap
    p-value ``2·min(P(Δ ≤ 0), P(Δ ≥ 0))``; ``point`` is the difference on the split."""
    diff = other - reference
    diff = diff[~np.isnan(diff)]
    if not len(diff):
        return {"difference": point, "ci": None, "p_value": None}
    p = min(1.0, 2 * min(float(np.mean(diff <= 0)), float(np.mean(diff >= 0))))
    return {"difference": point, "ci": percentile_ci(diff, level), "p_value": p}


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


def best_f1_threshold(y: np.ndarray, prob: np.ndarray) -> tuple[float, float]:
    """The threshold (0.01 steps) at which labelling ``prob >= t`` positive gives the
    highest binary macro-F1 on (dev) labels ``y``, and that macro-F1. Ties go to the
    threshold nearest 0.5, so a flat curve leaves the usual decision alone."""
    y = np.asarray(y).astype(int)
    prob = np.asarray(prob, dtype=float)
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
    every = np.arange(len(y))[None, :]
    values = np.array(
        [macro_f1_resampled(y, (prob >= t).astype(int), (0, 1), 2, every)[0] for t in grid]
    )
    best = values.max()
    candidates = np.flatnonzero(values >= best - 1e-12)
    i = int(candidates[np.argmin(np.abs(grid[candidates] - 0.5))])
    return float(grid[i]), float(values[i])


def choose_threshold(y: np.ndarray, prob: np.ndarray, target: CalibrationTarget) -> dict[str, Any]:
    """A threshold (a comment is held when its score ≥ it) meeting ``target`` on
    dev examples, from :func:`sklearn.metrics.precision_recall_curve`; the lowest
    such threshold, so recall is as high as the target allows. ``threshold`` is
    None when no threshold meets it."""
    y = np.asarray(y).astype(int)
    prob = np.asarray(prob, dtype=float)
    out: dict[str, Any] = {"n": len(y), "positives": int(y.sum())}
    if not y.any():
        return {**out, "threshold": None, "reason": "no positive dev example"}
    precision, recall, thresholds = precision_recall_curve(y, prob)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    held = 1 - np.searchsorted(np.sort(prob), thresholds, side="left") / len(prob)
    ok = precision >= target.value if target.kind == "precision" else held <= target.value
    if not ok.any():
        best = float(precision.max()) if target.kind == "precision" else float(held.min())
        reason = (
            f"precision {target.value} not reachable (best {best:.3f})"
            if target.kind == "precision"
            else f"every threshold holds more than {target.value} (least {best:.3f})"
        )
        return {**out, "threshold": None, "reason": reason}
    i = int(np.flatnonzero(ok)[0])  # thresholds ascend: the first is the lowest
    return {
        **out,
        "threshold": float(thresholds[i]),
        "precision": float(precision[i]),
        "recall": float(recall[i]),
        "held_fraction": float(held[i]),
    }


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
