"""Per Perspective attribute, our ROC-AUC on held-out news-comment test data, with a
bootstrap interval: the figures docs/perspective.md gives for each production attribute.

Each attribute is read from the label it maps to (classifier.labels.PERSPECTIVE_ATTRIBUTES)
and measured on the test splits whose annotation asks the same question:

- TOXICITY: C3 (crowd toxicity level >= 2), ToxicSpans;
- SEVERE_TOXICITY: C3 level >= 3 (the scale's severe end), ToxicSpans where the adapter
  gives it;
- INSULT, PROFANITY, IDENTITY_ATTACK, THREAT: ToxicSpans' typed spans;
- THREAT also: ``news_threats`` (news-site threats and benign comments).

A corpus's gold is its label column at >= 0.5 (unknown rows left out); a pair with fewer
than 10 positives or negatives is skipped and says so, as is an attribute the model does
not provide (v0.5 has no severe_toxicity head) and a corpus not present under the data
root (the script exits 0 without ../shared/data, saying so).

    python benchmarks/perspective_attributes.py [--model DIR] [--max-examples N]

Needs the train extra (the corpora adapters).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: (attribute, corpus) pairs measured, in the order printed.
PAIRS: tuple[tuple[str, str], ...] = (
    ("TOXICITY", "c3"),
    ("TOXICITY", "toxic_spans"),
    ("SEVERE_TOXICITY", "c3"),
    ("SEVERE_TOXICITY", "toxic_spans"),
    ("INSULT", "toxic_spans"),
    ("PROFANITY", "toxic_spans"),
    ("IDENTITY_ATTACK", "toxic_spans"),
    ("THREAT", "toxic_spans"),
    ("THREAT", "news_threats"),
)
MIN_EACH = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model folder (default: the shipped model)")
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--max-examples", type=int, help="a seeded subset of each test split")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not args.data_root.is_dir():
        print(f"skipped: no corpora at {args.data_root} (give --data-root)")
        return 0

    from classifier.labels import PERSPECTIVE_ATTRIBUTES
    from classifier.model.loading import load_predictor
    from training.bootstrap import bootstrap_indices, percentile_ci, roc_auc_resampled
    from training.corpora import load_corpus

    predictor = load_predictor(args.model, backend="torch")
    labels = list(predictor.toxicity_labels)
    print(f"model {predictor.model_version}; toxicity labels: {', '.join(labels)}")
    cache: dict[str, tuple[Any, np.ndarray] | str] = {}

    def scored(corpus: str) -> tuple[Any, np.ndarray] | str:
        if corpus not in cache:
            try:
                test = load_corpus(corpus, args.data_root, split="test")
            except (FileNotFoundError, ValueError, KeyError) as exc:
                cache[corpus] = f"not available ({exc})"
                return cache[corpus]
            if args.max_examples and len(test) > args.max_examples:
                test = test.shuffle(seed=args.seed).select(range(args.max_examples))
            cache[corpus] = (test, predictor.comment_scores(list(test["text"])).toxicity)
        return cache[corpus]

    rows = []
    print(f"\n{'attribute':18} {'label':16} {'corpus':13} {'n':>6} {'pos':>5}  ROC-AUC [95% CI]")
    for attribute, corpus in PAIRS:
        label = PERSPECTIVE_ATTRIBUTES[attribute][1]
        row: dict[str, Any] = {"attribute": attribute, "label": label, "corpus": corpus}
        if label not in labels:
            row["skipped"] = f"this model does not provide {label}"
        elif isinstance(data := scored(corpus), str):
            row["skipped"] = data
        else:
            test, prob = data
            gold = np.asarray(test[label], dtype=float) if label in test.column_names else None
            known = gold >= 0 if gold is not None else None
            if gold is None or known is None or not known.any():
                row["skipped"] = f"{corpus} does not annotate {label}"
            else:
                y = (gold[known] >= 0.5).astype(int)
                p = prob[known, labels.index(label)]
                row.update(n=len(y), positives=int(y.sum()))
                if y.sum() < MIN_EACH or (1 - y).sum() < MIN_EACH:
                    row["skipped"] = f"too few positives or negatives ({int(y.sum())})"
                else:
                    every = np.arange(len(y))[None, :]
                    row["roc_auc"] = float(roc_auc_resampled(y, p, every)[0])
                    samples = np.concatenate(
                        [
                            roc_auc_resampled(y, p, idx)
                            for idx in bootstrap_indices(len(y), args.bootstrap, args.seed)
                        ]
                    )
                    row["ci"] = percentile_ci(samples)
        rows.append(row)
        if "roc_auc" in row:
            lo, hi = row["ci"] or (float("nan"), float("nan"))
            figure = f"{row['roc_auc']:.3f} [{lo:.3f}, {hi:.3f}]"
        else:
            figure = f"skipped: {row['skipped']}"
        n = f"{row.get('n', '-'):>6} {row.get('positives', '-'):>5}"
        print(f"{attribute:18} {label:16} {corpus:13} {n}  {figure}")
    if args.json is not None:
        args.json.write_text(json.dumps({"model": predictor.model_version, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
