"""Decision thresholds chosen on dev splits.

:func:`choose_threshold` finds the lowest threshold that meets a
:class:`~training.metrics.CalibrationTarget` (``threadguard evaluate --calibrate``
writes it to ``thresholds.yaml``); :func:`best_f1_threshold` the one that maximizes
a binary macro-F1 (``--tune-thresholds``). Both read dev labels and scores only, so
the test figures at those thresholds stay test figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_curve

from training.bootstrap import macro_f1_resampled
from training.metrics import CalibrationTarget


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
