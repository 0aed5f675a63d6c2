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
from sklearn.metrics import roc_auc_score

from classifier.model.loading import load_predictor
from training.bootstrap import bootstrap_indices, percentile_ci, roc_auc_resampled
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


def threshold_figures(
    y: np.ndarray, prob: np.ndarray, threshold: float, idx: np.ndarray
) -> dict[str, Any]:
    """Precision and recall of ``prob >= threshold``, with bootstrap intervals over ``idx``."""
    flagged = prob >= threshold
    tp = float((flagged & (y == 1)).sum())
    precision = tp / flagged.sum() if flagged.any() else float("nan")
    recall = tp / (y == 1).sum() if (y == 1).any() else float("nan")
    f, g = flagged[idx], (y[idx] == 1)
    tps = (f & g).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_s = np.where(f.sum(axis=1) > 0, tps / f.sum(axis=1), np.nan)
        r_s = np.where(g.sum(axis=1) > 0, tps / g.sum(axis=1), np.nan)
    return {
        "threshold": threshold,
        "flagged": int(flagged.sum()),
        "precision": precision,
        "precision_ci": percentile_ci(p_s),
        "recall": recall,
        "recall_ci": percentile_ci(r_s),
    }


def measure(
    prob: np.ndarray, y: np.ndarray, thresholds: tuple[float, ...], n_resamples: int, seed: int
) -> dict[str, Any]:
    """The figures of one split: n, positives, AUC [CI], ECE, and per threshold P and R."""
    idx = np.concatenate(list(bootstrap_indices(len(y), n_resamples, seed)))
    out: dict[str, Any] = {"n": len(y), "positives": int(y.sum())}
    if 0 < y.sum() < len(y):
        out["auc"] = float(roc_auc_score(y, prob))
        out["auc_ci"] = percentile_ci(roc_auc_resampled(y, prob, idx))
    out["ece"] = expected_calibration_error(y, prob)
    out["thresholds"] = [threshold_figures(y, prob, t, idx) for t in thresholds]
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
        prob = predictor.toxicity_of_texts(texts)[:, column]
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
