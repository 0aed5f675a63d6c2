"""Is ``threat`` calibrated and good enough to act on? The figures issue 41 asks for.

For each split that annotates threats (news_threats, the Gab Hate Corpus's calls for
violence, ToxicSpans' threat spans, threadguard's own contrast sentences: dev, the split
calibration is fitted on for the first two, and test, which nothing was fitted on), it prints
ROC-AUC, expected calibration error, and the precision and recall of the policy's review
threshold (0.5) and of a candidate reject threshold, each with a 95 % bootstrap interval.
Gold: annotator share >= 0.5. The contrast split has only dev (its templates are held out
of training; it has no test split).

    python benchmarks/threat.py                      # the shipped model
    python benchmarks/threat.py --model runs/intent/model --backend torch --json runs/threat.json
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from classifier.model.loading import load_predictor
from training.bootstrap import binary_scores, bootstrap_indices, percentile_ci
from training.corpora import load_corpus
from training.metrics import expected_calibration_error

logger = logging.getLogger("benchmarks.threat")

#: (corpus, split) pairs that annotate threat.
SPLITS: tuple[tuple[str, str], ...] = (
    ("news_threats", "dev"),
    ("gab_hate", "dev"),
    ("toxic_spans", "dev"),
    ("news_threats", "test"),
    ("gab_hate", "test"),
    ("toxic_spans", "test"),
    ("contrast", "dev"),
)


def _precision_recall(flagged: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall per row of ``flagged`` and ``positive`` [B, n] (NaN where
    nothing is flagged, or nothing is positive)."""
    tp = (flagged & positive).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(flagged.sum(axis=-1) > 0, tp / flagged.sum(axis=-1), np.nan)
        recall = np.where(positive.sum(axis=-1) > 0, tp / positive.sum(axis=-1), np.nan)
    return precision, recall


def measure(
    prob: np.ndarray, y: np.ndarray, thresholds: tuple[float, ...], n_resamples: int, seed: int
) -> dict[str, Any]:
    """The figures of one split: n, positives, AUC [CI] (:func:`binary_scores`), ECE, and
    per threshold the precision and recall [CI] on the same resamples."""
    scores = binary_scores(y, prob, n_resamples=n_resamples, seed=seed)
    out: dict[str, Any] = {"n": len(y), "positives": int(y.sum())}
    if scores["roc_auc"] is not None:
        out["auc"], out["auc_ci"] = scores["roc_auc"], scores["roc_auc_ci"]
    out["ece"] = expected_calibration_error(y, prob)
    positive = y == 1
    samples: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in thresholds]
    for idx in bootstrap_indices(len(y), n_resamples, seed):
        for k, t in enumerate(thresholds):
            samples[k].append(_precision_recall((prob >= t)[idx], positive[idx]))
    out["thresholds"] = []
    for k, t in enumerate(thresholds):
        precision, recall = _precision_recall(prob >= t, positive)
        out["thresholds"].append(
            {
                "threshold": t,
                "flagged": int((prob >= t).sum()),
                "precision": float(precision),
                "precision_ci": percentile_ci(np.concatenate([p for p, _ in samples[k]])),
                "recall": float(recall),
                "recall_ci": percentile_ci(np.concatenate([r for _, r in samples[k]])),
            }
        )
    return out


def _fmt(value: float, ci: list[float] | None) -> str:
    if value != value:  # nan
        return "-"
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    parser.add_argument("--backend", default="onnx", help="torch, onnx, onnx-int8 or auto")
    parser.add_argument("--data-root", default=None, help="corpora folder (default ../shared/data)")
    parser.add_argument("--reject", type=float, default=0.9, help="candidate reject threshold")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    predictor = load_predictor(args.model, backend=args.backend)
    if "threat" not in predictor.toxicity_labels:
        parser.error("the model has no threat label")
    column = predictor.toxicity_labels.index("threat")
    results: dict[str, Any] = {"model": predictor.model_version, "splits": {}}
    print(f"threat of {predictor.model_version} ({args.backend})")
    print(
        "| split | n (threats) | ROC-AUC | ECE | precision at 0.5 | recall at 0.5 | "
        f"precision at {args.reject} | recall at {args.reject} |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for corpus, split in SPLITS:
        try:
            data = load_corpus(corpus, args.data_root, split=split)
        except (FileNotFoundError, ValueError) as exc:
            logger.warning("skipping %s %s: %s", corpus, split, exc)
            continue
        gold = np.asarray(data["threat"], dtype=np.float32)
        known = gold >= 0
        texts = [t for t, k in zip(data["text"], known, strict=True) if k]
        if not texts:
            continue
        prob = predictor.comment_scores(texts).toxicity[:, column]
        y = (gold[known] >= 0.5).astype(int)
        found = measure(prob, y, (0.5, args.reject), args.resamples, args.seed)
        results["splits"][f"{corpus}:{split}"] = found
        at = found["thresholds"]
        print(
            f"| {corpus} {split} | {found['n']} ({found['positives']}) | "
            f"{_fmt(found.get('auc', float('nan')), found.get('auc_ci'))} | {found['ece']:.3f} | "
            + " | ".join(
                f"{_fmt(t['precision'], t['precision_ci'])} | {_fmt(t['recall'], t['recall_ci'])}"
                for t in at
            )
            + " |"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
