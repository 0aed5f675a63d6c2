"""Calibrate a comment model's toxicity probabilities on news-comment dev data.

The head's raw probabilities rank comments but do not mean what they say (v0.3.1
gave ordinary news comments 0.6). Platt scaling per label (a logistic regression on
the logit of the window-max probability) is fitted on the dev splits of the news
corpora, so that 0.5 means "more likely toxic than not" by those corpora's
annotators, and saved in the comment model's config, where the runtime applies it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from classifier.runtime import COMMENT_DIR, CONFIG_FILE, load_predictor, logit, model_dir
from training.corpora import load_corpus
from training.metrics import expected_calibration_error

logger = logging.getLogger(__name__)

#: The dev splits calibration reads: comments under news articles and talk-page comments.
NEWS_DEV = ("c3", "toxic_spans", "context_toxicity")


def fit_calibration(
    model: str | Path,
    corpora: Sequence[str] = NEWS_DEV,
    *,
    data_root: str | Path | None = None,
    min_positives: int = 10,
) -> dict[str, Any]:
    """Fit and save the toxicity calibration of ``model``'s comment model (in place).

    Each label is fitted on every dev row of ``corpora`` that annotates it (gold >= 0.5
    is toxic); a label with fewer than ``min_positives`` positives there is left as the
    head gives it and named in ``skipped``. Returns what was saved, with the dev ECE
    before and after.
    """
    folder = model_dir(model)
    comment_dir = folder / COMMENT_DIR
    if not (comment_dir / CONFIG_FILE).is_file():
        raise ValueError(f"{folder} has no comment model ({COMMENT_DIR}/{CONFIG_FILE})")
    predictor = load_predictor(comment_dir, backend="torch")
    predictor.calibration = None
    labels = predictor.toxicity_labels
    probs, golds = [], []
    for name in corpora:
        dev = load_corpus(name, data_root, split="dev")
        probs.append(predictor.toxicity_of_texts(list(dev["text"])))
        golds.append(np.stack([np.asarray(dev[label], dtype=np.float32) for label in labels], 1))
        logger.info("calibration: %s dev, %d comments", name, len(dev))
    prob, gold = np.concatenate(probs), np.concatenate(golds)
    fitted: dict[str, list[float]] = {}
    report: dict[str, Any] = {}
    skipped = []
    for j, label in enumerate(labels):
        known = gold[:, j] >= 0
        y = (gold[known, j] >= 0.5).astype(int)
        if y.sum() < min_positives or (1 - y).sum() < min_positives:
            skipped.append(label)
            continue
        features = logit(prob[known, j]).reshape(-1, 1)
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(features, y)
        fitted[label] = [float(lr.coef_[0, 0]), float(lr.intercept_[0])]
        report[label] = {
            "n": int(known.sum()),
            "positives": int(y.sum()),
            "ece_before": expected_calibration_error(y, prob[known, j]),
            "ece_after": expected_calibration_error(y, lr.predict_proba(features)[:, 1]),
        }
    saved = {
        "method": "platt",
        "fitted_on": [f"{name}:dev" for name in corpora],
        "labels": fitted,
        "skipped": skipped,
        "dev": report,
    }
    path = comment_dir / CONFIG_FILE
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["calibration"] = saved
    path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return saved
