"""Bootstrap resampling and percentile intervals, and the figures reported with them.

The resamples are drawn by :func:`bootstrap_indices`, the same for the same split and
seed, so that models scored on one split are compared on the same resamples (a paired
bootstrap: :func:`paired_difference`). The metrics a bootstrap needs many times over
(macro-F1 and ROC-AUC) are computed for every resample at once, as scikit-learn
computes them once; :class:`PrimaryData` holds what a corpus's primary metric is
computed from. :func:`binary_scores` and :func:`constructive_metrics` are the figures
this project reports with their intervals (news toxicity, C3's constructiveness).

The point metrics of one split are in :mod:`training.metrics`; this module is what
turns them into intervals.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.metrics import PrimaryKind


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
