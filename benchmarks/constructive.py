"""Constructiveness benchmark: the comment model's constructiveness head on C3 test,
beside a TF-IDF + logistic regression baseline and a length-only baseline.

C3 is split by article (training.corpora: 70/10/20 by a seeded hash of the article id),
so no test article was seen in training. Gold: ``constructive_binary``, C3's own label
(more than half of a comment's raters judged it constructive). For each scorer:

* ROC-AUC, and F1 of the constructive class and binary macro-F1 at 0.5 and at the
  threshold with the best macro-F1 on C3 dev (chosen on dev only), each with a 95 %
  percentile bootstrap interval (the same resamples for every scorer), and the paired
  AUC difference from the model;
* ROC-AUC per characteristic (dialogue, evidence, personal_story, solution,
  specific_points): positive when at least half the raters named it, or, when that
  leaves fewer than 30 test positives, when any rater did (the rule used is printed);
* ROC-AUC within length terciles of C3 test (cut points printed), since constructive
  comments are long and a length-only score already ranks them well.

Baselines, trained on C3 train: TF-IDF (word 1-2 grams) + logistic regression, one per
label; logistic regression on log(1 + characters) alone.

Published anchor: Kolhatkar et al. 2020 ("Classifying constructive comments", First
Monday) report F1 around 0.90+ for BiLSTM and BERT models on C3, on their own split
(not this article-level one) and with their own F1 averaging (neither could be checked
offline: only the abstract was at hand), so their figures are not comparable one for one
with these.

    python -m benchmarks.constructive --backend onnx --json /tmp/bench_constructive.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from classifier.labels import CONSTRUCTIVE_LABELS
from classifier.model.constants import model_dir
from classifier.model.loading import load_predictor
from training.baselines import LOGREG_OPTIONS, TFIDF_OPTIONS
from training.bootstrap import (
    binary_scores,
    bootstrap_indices,
    characteristic_target,
    paired_difference,
    percentile_ci,
    roc_auc_resampled,
)
from training.corpora import load_corpus
from training.thresholds import best_f1_threshold

logger = logging.getLogger(__name__)

#: Kolhatkar et al. 2020, as cited when this benchmark was written: only the paper's
#: abstract could be checked offline, not its results table, split or F1 averaging.
PUBLISHED = (
    "Kolhatkar et al. 2020 ('Classifying constructive comments', First Monday): F1 about "
    "0.90+ for BiLSTM / BERT on C3, on their own split of C3 (not this article-level one) "
    "and with their own F1 averaging (not checked here): not comparable one for one"
)

#: Label → probability [N] of each label a scorer has, for a split's texts.
Scorer = Callable[[Sequence[str]], dict[str, np.ndarray]]


def binary_gold(data: datasets.Dataset) -> np.ndarray:
    """C3's ``constructive_binary``: more than half the raters judged it constructive."""
    return (np.asarray(data["constructive"], dtype=float) > 0.5).astype(int)


def rated(data: datasets.Dataset) -> datasets.Dataset:
    """The rows whose constructiveness was rated."""
    known = np.flatnonzero(np.asarray(data["constructive"], dtype=float) >= 0)
    return data.select(known)


def model_scorer(model: str | None, backend: str) -> tuple[Scorer, dict[str, Any]]:
    """The comment model's constructiveness head (every label it has), and its description."""
    predictor = load_predictor(model, backend=backend)
    comment = predictor.comment_model or predictor
    if not comment.constructive_labels or "constructive" not in comment.constructive_labels:
        raise SystemExit(f"{model_dir(model)}: the comment model has no constructiveness head")
    labels = comment.constructive_labels

    def score(texts: Sequence[str]) -> dict[str, np.ndarray]:
        found = comment.comment_scores(list(texts), spans=False).constructive
        assert found is not None
        return {name: found[:, k] for k, name in enumerate(labels)}

    about = {"model_version": predictor.model_version, "labels": list(labels)}
    return score, about


def tfidf_scorer(train: datasets.Dataset, rules: Mapping[str, str]) -> Scorer:
    """TF-IDF + logistic regression per label of ``rules`` (label → how it is binarised,
    see :func:`target`), trained on ``train``."""
    vectorizer = TfidfVectorizer(**TFIDF_OPTIONS)
    features = vectorizer.fit_transform(train["text"])
    fitted: dict[str, LogisticRegression] = {}
    for name, rule in rules.items():
        y = target(train, name, rule)
        fitted[name] = LogisticRegression(**LOGREG_OPTIONS).fit(features, y)

    def score(texts: Sequence[str]) -> dict[str, np.ndarray]:
        x = vectorizer.transform(list(texts))
        return {name: model.predict_proba(x)[:, 1] for name, model in fitted.items()}

    return score


def log_length(texts: Sequence[str]) -> np.ndarray:
    """log(1 + characters) of each text, as a one-column feature matrix."""
    return np.log1p(np.asarray([len(t) for t in texts], dtype=float))[:, None]


def length_scorer(train: datasets.Dataset, rules: Mapping[str, str]) -> Scorer:
    """Logistic regression on log length alone, per label of ``rules``, trained on ``train``."""
    features = log_length(train["text"])
    fitted = {
        name: LogisticRegression(**LOGREG_OPTIONS).fit(features, target(train, name, rule))
        for name, rule in rules.items()
    }

    def score(texts: Sequence[str]) -> dict[str, np.ndarray]:
        x = log_length(texts)
        return {name: model.predict_proba(x)[:, 1] for name, model in fitted.items()}

    return score


def target(data: datasets.Dataset, name: str, rule: str) -> np.ndarray:
    """0/1 labels of ``name``: constructive_binary for ``constructive``, else the
    raters' share binarised by ``rule`` (``">= 0.5"`` or ``"> 0"``, as
    :func:`~training.bootstrap.characteristic_target` chose it on test), so the baselines
    learn the labels they are scored on."""
    if name == "constructive":
        return binary_gold(data)
    shares = np.asarray(data[name], dtype=float)
    return (shares >= 0.5 if rule == ">= 0.5" else shares > 0).astype(int)


def length_buckets(texts: Sequence[str]) -> tuple[list[tuple[str, np.ndarray]], list[float]]:
    """Terciles of the texts' lengths in characters: (name, mask) per bucket, and the
    two cut points."""
    lengths = np.asarray([len(t) for t in texts], dtype=float)
    low, high = (float(v) for v in np.quantile(lengths, [1 / 3, 2 / 3]))
    buckets = [
        (f"short (< {low:.0f} chars)", lengths < low),
        (f"middle ({low:.0f}-{high:.0f})", (lengths >= low) & (lengths < high)),
        (f"long (>= {high:.0f})", lengths >= high),
    ]
    return buckets, [low, high]


def auc_with_ci(y: np.ndarray, prob: np.ndarray, n_boot: int, seed: int = 0) -> dict[str, Any]:
    """ROC-AUC with its 95 % bootstrap interval and its resamples (for paired differences)."""
    found = binary_scores(y, prob, 0.5, 0)
    samples = (
        np.concatenate(
            [roc_auc_resampled(y, prob, idx) for idx in bootstrap_indices(len(y), n_boot, seed)]
        )
        if found["roc_auc"] is not None and n_boot > 0
        else np.zeros(0)
    )
    return {
        "n": found["n"],
        "positives": found["positives"],
        "roc_auc": found["roc_auc"],
        "roc_auc_ci": percentile_ci(samples) if len(samples) else None,
        "samples": samples,
    }


def run(
    model: str | None,
    backend: str = "onnx",
    n_boot: int = 1000,
    data_root: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Every figure of the benchmark (see the module docstring) as a JSON-ready dict
    (bootstrap resamples under ``samples`` keys, which :func:`main` drops); ``limit``:
    the first N dev and test comments only (a quick check)."""
    corpus = load_corpus("c3", data_root)
    train, dev, test = (rated(corpus[s]) for s in ("train", "dev", "test"))
    if limit is not None:
        dev, test = (d.select(range(min(limit, len(d)))) for d in (dev, test))
    under_test, about = model_scorer(model, backend)
    labels = [name for name in about["labels"] if name in CONSTRUCTIVE_LABELS]
    y_dev, y_test = binary_gold(dev), binary_gold(test)
    rules = {
        name: characteristic_target(np.asarray(test[name], dtype=float))
        for name in labels
        if name != "constructive"
    }
    how = {"constructive": "> 0.5", **{name: rule for name, (_, rule) in rules.items()}}
    scorers: dict[str, Scorer] = {
        "model": under_test,
        "TF-IDF + LR (C3 train)": tfidf_scorer(train, how),
        "length only (LR on log chars)": length_scorer(train, how),
    }
    buckets, cuts = length_buckets(test["text"])
    results: dict[str, Any] = {
        "model": str(model_dir(model)),
        "backend": backend,
        **about,
        "split": "C3 by article (70/10/20, training.corpora.load_c3)",
        "rows": {"train": len(train), "dev": len(dev), "test": len(test)},
        "bootstrap": n_boot,
        "length_cuts": cuts,
        "characteristic_rules": {name: rule for name, (_, rule) in rules.items()},
        "published": PUBLISHED,
        "scorers": {},
    }
    for name, scorer in scorers.items():
        t0 = time.perf_counter()
        on_dev, on_test = scorer(dev["text"]), scorer(test["text"])
        prob = on_test["constructive"]
        threshold, dev_macro = best_f1_threshold(y_dev, on_dev["constructive"])
        out: dict[str, Any] = {
            "at_0.5": binary_scores(y_test, prob, 0.5, n_boot),
            "at_dev_threshold": {
                **binary_scores(y_test, prob, threshold, n_boot),
                "dev_macro_f1": dev_macro,
            },
            "auc": auc_with_ci(y_test, prob, n_boot),
            "characteristics": {},
            "length_buckets": {},
        }
        for label, (gold, rule) in rules.items():
            if label in on_test:
                found = auc_with_ci(gold, on_test[label], n_boot)
                out["characteristics"][label] = {**found, "binarised": rule}
        for bucket, mask in buckets:
            out["length_buckets"][bucket] = auc_with_ci(y_test[mask], prob[mask], n_boot)
        out["seconds"] = time.perf_counter() - t0
        results["scorers"][name] = out
        logger.info(
            "%s: AUC %.4f (%.0f s)", name, out["auc"]["roc_auc"] or float("nan"), out["seconds"]
        )
    reference = results["scorers"]["model"]
    for name, out in results["scorers"].items():
        if name == "model":
            continue
        a, b = reference["auc"], out["auc"]
        if a["roc_auc"] is not None and b["roc_auc"] is not None:
            out["auc_vs_model"] = paired_difference(
                a["samples"], b["samples"], b["roc_auc"] - a["roc_auc"]
            )
    return results


def _cell(found: dict[str, Any] | None, key: str) -> str:
    if not found or found.get(key) is None:
        return "-"
    ci = found.get(f"{key}_ci")
    return f"{found[key]:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{found[key]:.3f}"


def print_table(results: dict[str, Any]) -> None:
    """The benchmark's figures as plain-text tables."""
    names = list(results["scorers"])
    rows = results["rows"]
    print(f"model: {results['model']} ({results['model_version']}, {results['backend']})")
    print(
        f"C3 test, {results['split']}: {rows['test']} comments (train {rows['train']}, "
        f"dev {rows['dev']}); gold constructive_binary (constructive share > 0.5); "
        f"95 % bootstrap CI, {results['bootstrap']} resamples"
    )
    width = 26
    print("\n" + f"{'':40s} | " + " | ".join(f"{n:{width}s}" for n in names))
    first = results["scorers"][names[0]]

    def line(title: str, cells: list[str]) -> None:
        print(f"{title:40s} | " + " | ".join(f"{c:{width}s}" for c in cells))

    line("ROC-AUC", [_cell(results["scorers"][n]["auc"], "roc_auc") for n in names])
    line(
        "  AUC difference from the model",
        [
            "-"
            if "auc_vs_model" not in results["scorers"][n]
            else "{:+.3f} [{:+.3f}, {:+.3f}]".format(
                results["scorers"][n]["auc_vs_model"]["difference"],
                *results["scorers"][n]["auc_vs_model"]["ci"],
            )
            for n in names
        ],
    )
    line("F1 (constructive) at 0.5", [_cell(results["scorers"][n]["at_0.5"], "f1") for n in names])
    line("macro-F1 at 0.5", [_cell(results["scorers"][n]["at_0.5"], "macro_f1") for n in names])
    line(
        "dev-tuned threshold (best dev macro-F1)",
        [f"{results['scorers'][n]['at_dev_threshold']['threshold']:.2f}" for n in names],
    )
    line(
        "F1 (constructive) at the dev threshold",
        [_cell(results["scorers"][n]["at_dev_threshold"], "f1") for n in names],
    )
    line(
        "macro-F1 at the dev threshold",
        [_cell(results["scorers"][n]["at_dev_threshold"], "macro_f1") for n in names],
    )
    positives = first["auc"]["positives"]
    print(f"(positives {positives} of {first['auc']['n']})")
    print("\nROC-AUC per characteristic (n positives, binarised at share ...)")
    for label, rule in results["characteristic_rules"].items():
        found = first["characteristics"].get(label)
        title = f"  {label} ({found['positives'] if found else '?'}, {rule})"
        line(
            title,
            [_cell(results["scorers"][n]["characteristics"].get(label), "roc_auc") for n in names],
        )
    low, high = results["length_cuts"]
    print(
        f"\nROC-AUC of constructive_binary within length terciles of C3 test (cuts {low:.0f}, {high:.0f} chars)"
    )
    for bucket in first["length_buckets"]:
        found = first["length_buckets"][bucket]
        line(
            f"  {bucket} n {found['n']}, pos {found['positives']}",
            [_cell(results["scorers"][n]["length_buckets"][bucket], "roc_auc") for n in names],
        )
    print(f"\npublished: {results['published']}")


def _without_samples(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_samples(v) for k, v in value.items() if k != "samples"}
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--backend", default="onnx", help="backend of the model under test")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--data-root", default=None)
    parser.add_argument(
        "--limit", type=int, default=None, help="first N dev and test comments only"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = run(args.model, args.backend, args.bootstrap, args.data_root, args.limit)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(_without_samples(results), indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
