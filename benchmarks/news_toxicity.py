"""News-comment toxicity benchmark: the model under test beside its peers, on the same comments.

For each scorer, ROC-AUC and average precision with 95 % paired-bootstrap intervals on
C3 test (the article-level split; level >= 2 and >= 3), ToxicSpans test, context_toxicity
test (read with the parent comment), and comments of 100+ words apart; per-label ROC-AUC
where a corpus annotates the label (ToxicSpans' span types, C3's personal attacks) and on
the tweet guard rails (OLID, HatEval); the bias_madlibs metrics; expected calibration
error; the share of comments flagged at 0.5; and the mean score of the seed comments.

Peers, scored on the same comments: the model folder's own toxicity head without its
comment model (v0.3.1's pair-pass score), alt-profanity-check, and TF-IDF + logistic
regression trained on the train splits of the same news corpora, and with ``--keras-python``
``toxic-comment-classifier`` (Keras, needs tensorflow: benchmarks/keras_peer.py says how).

    python benchmarks/news_toxicity.py                    # the shipped model
    python benchmarks/news_toxicity.py --keras-python /tmp/tfenv/bin/python --json runs/news.json
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from classifier.io.readers import read_file
from classifier.model.loading import load_predictor
from classifier.model.predictor import BatchPredictor
from classifier.schema import Thread
from training.bootstrap import bootstrap_indices, percentile_ci, roc_auc_resampled
from training.corpora import load_corpus
from training.eval_datasets import identity_subgroups
from training.metrics import bias_metrics, expected_calibration_error

ROOT = Path(__file__).resolve().parents[1]
NEWS = ("c3", "toxic_spans", "context_toxicity")
LONG_WORDS = 100
#: (set name, corpus, label column, gold threshold, what the row means)
SETS: tuple[tuple[str, str, str, float], ...] = (
    ("C3 test, level >= 2", "c3", "toxicity", 0.5),
    ("C3 test, level >= 3", "c3", "toxicity", 1.0 - 1e-6),
    ("ToxicSpans test", "toxic_spans", "toxicity", 0.5),
    ("context_toxicity test (with parent)", "context_toxicity", "toxicity", 0.5),
)
PER_LABEL: tuple[tuple[str, str], ...] = (
    ("toxic_spans", "insult"),
    ("toxic_spans", "obscene"),
    ("toxic_spans", "threat"),
    ("toxic_spans", "identity_attack"),
    ("c3", "insult"),
    ("olid", "toxicity"),
    ("hateval2019", "identity_attack"),
)

Scorer = Callable[[list[dict[str, str]]], dict[str, np.ndarray]]


def model_scorer(predictor: BatchPredictor) -> Scorer:
    def score(items: list[dict[str, str]]) -> dict[str, np.ndarray]:
        tox = predictor.score_arrays(items).toxicity
        return {name: tox[:, j] for j, name in enumerate(predictor.toxicity_labels)}

    return score


def profanity_scorer() -> Scorer:
    from profanity_check import predict_prob

    return lambda items: {"toxicity": np.asarray(predict_prob([i["text"] for i in items]))}


def tfidf_scorer(data_root: str | None) -> Scorer:
    texts: list[str] = []
    gold: list[int] = []
    for name in NEWS:
        train = load_corpus(name, data_root, split="train")
        texts += list(train["text"])
        gold += [int(v >= 0.5) for v in train["toxicity"]]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    fitted = LogisticRegression(C=4.0, max_iter=2000).fit(vectorizer.fit_transform(texts), gold)

    def score(items: list[dict[str, str]]) -> dict[str, np.ndarray]:
        x = vectorizer.transform([i["text"] for i in items])
        return {"toxicity": fitted.predict_proba(x)[:, 1]}

    return score


def keras_scorer(python: str) -> Scorer:
    """toxic-comment-classifier, run by ``python`` (an environment with tensorflow) through
    benchmarks/keras_peer.py, so that threadguard's own environment never needs tensorflow."""

    def score(items: list[dict[str, str]]) -> dict[str, np.ndarray]:
        with tempfile.TemporaryDirectory() as tmp:
            source, target = Path(tmp) / "in.json", Path(tmp) / "out.json"
            source.write_text(json.dumps([i["text"] for i in items]), encoding="utf-8")
            script = Path(__file__).with_name("keras_peer.py")
            subprocess.run([python, str(script), str(source), str(target)], check=True)
            found = json.loads(target.read_text(encoding="utf-8"))
        return {name: np.asarray(values) for name, values in found.items()}

    return score


def interval(y: np.ndarray, p: np.ndarray, n_boot: int) -> dict[str, Any]:
    """AUC and AP with 95 % bootstrap intervals (the same resamples for every scorer)."""
    aucs = np.concatenate(
        [roc_auc_resampled(y, p, idx) for idx in bootstrap_indices(len(y), n_boot, 0)]
    )
    rng = np.random.default_rng(0)
    aps = []
    for _ in range(min(n_boot, 300)):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            aps.append(average_precision_score(y[i], p[i]))
    full = roc_auc_resampled(y, p, np.arange(len(y))[None, :])[0]
    return {
        "n": len(y),
        "positives": int(y.sum()),
        "auc": float(full),
        "auc_ci": percentile_ci(aucs[~np.isnan(aucs)]),
        "ap": float(average_precision_score(y, p)),
        "ap_ci": percentile_ci(np.asarray(aps)),
    }


def seed_items() -> list[dict[str, str]]:
    items = []
    for path in sorted((ROOT / "seeds").glob("*")):
        for thread in read_file(path):
            if isinstance(thread, Thread):
                items += [{"text": c.text, "target": "", "context": ""} for c in thread.comments]
    return items


def run(
    model: str | None,
    data_root: str | None,
    n_boot: int,
    madlibs: int,
    keras_python: str | None = None,
    backend: str = "auto",
    peers: bool = True,
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in (*NEWS, "olid", "hateval2019"):
        data[name] = load_corpus(name, data_root, split="test")
    bias = load_corpus("bias_madlibs", data_root, split="test").shuffle(seed=0)
    bias = bias.select(range(min(madlibs, len(bias))))
    subgroups = identity_subgroups("bias_madlibs", bias, data_root)

    scorers: dict[str, Scorer] = {}
    under_test = load_predictor(model, backend=backend)
    scorers[f"under test ({under_test.model_version})"] = model_scorer(under_test)
    if under_test.comment_model is not None and peers:
        scorers["same folder, pair-pass head (v0.3.1)"] = model_scorer(
            load_predictor(model, comment_model=False, backend=backend)
        )
    if peers:
        scorers["alt-profanity-check"] = profanity_scorer()
        scorers["TF-IDF + LR (news train)"] = tfidf_scorer(data_root)
    if keras_python and peers:
        scorers["toxic-comment-classifier"] = keras_scorer(keras_python)

    results: dict[str, Any] = {"model": model or "classifier/default_model", "scorers": {}}
    seeds = seed_items()
    for scorer_name, scorer in scorers.items():
        t0 = time.perf_counter()
        out: dict[str, Any] = {}
        scores = {}
        for name, ds in data.items():
            items = [
                {"text": t, "target": g if name == "context_toxicity" else "", "context": ""}
                for t, g in zip(ds["text"], ds["target"], strict=True)
            ]
            scores[name] = scorer(items)
        for set_name, corpus, label, cut in SETS:
            gold = np.asarray(data[corpus][label])
            y = (gold >= cut).astype(int)
            p = scores[corpus]["toxicity"]
            out[set_name] = interval(y, p, n_boot)
            out[set_name]["ece"] = expected_calibration_error(y, np.clip(p, 0, 1))
            out[set_name]["flagged_negatives"] = float((p[y == 0] >= 0.5).mean())
            out[set_name]["flagged"] = float((p >= 0.5).mean())
        for corpus in ("c3", "toxic_spans"):
            words = np.asarray([len(t.split()) for t in data[corpus]["text"]])
            y = (np.asarray(data[corpus]["toxicity"]) >= 0.5).astype(int)
            p = scores[corpus]["toxicity"]
            for part, mask in (("long", words >= LONG_WORDS), ("short", words < LONG_WORDS)):
                out[
                    f"{corpus} test, {part} (100+ words)"
                    if part == "long"
                    else f"{corpus} test, short"
                ] = interval(y[mask], p[mask], n_boot)
        for corpus, label in PER_LABEL:
            if label not in scores[corpus]:
                continue
            gold = np.asarray(data[corpus][label])
            known = gold >= 0
            y = (gold[known] >= 0.5).astype(int)
            if 0 < y.sum() < len(y):
                out[f"label {label} on {corpus} test"] = interval(
                    y, scores[corpus][label][known], n_boot
                )
        bias_scores = scorer([{"text": t, "target": "", "context": ""} for t in bias["text"]])
        if subgroups:
            found = bias_metrics(
                np.asarray(bias["toxicity"]) >= 0.5, bias_scores["toxicity"], subgroups
            )
            out["bias_madlibs"] = {"final": found["final"], "overall_auc": found["overall_auc"],
                                   **{k: v for k, v in found["power_means"].items()}}  # fmt: skip
        seed_scores = scorer(seeds)
        out["seeds"] = {
            k: {"mean": float(v.mean()), "max": float(v.max())} for k, v in seed_scores.items()
        }
        out["seconds"] = time.perf_counter() - t0
        results["scorers"][scorer_name] = out
        logging.getLogger(__name__).info("%s: %.0f s", scorer_name, out["seconds"])
    return results


def _cell(found: dict[str, Any] | None, key: str = "auc") -> str:
    if not found or key not in found:
        return "-"
    ci = found.get(f"{key}_ci")
    return f"{found[key]:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{found[key]:.3f}"


def print_table(results: dict[str, Any]) -> None:
    names = list(results["scorers"])
    rows = sorted({k for s in results["scorers"].values() for k, v in s.items()
                   if isinstance(v, dict) and "auc" in v},
                  key=lambda k: (not k.startswith(("C3", "ToxicSpans", "context")), k))  # fmt: skip
    print(f"model under test: {results['model']}")
    for i, name in enumerate(names):
        print(f"  [{i}] {name}")
    print("\nROC-AUC [95 % CI] (n, positives)")
    for row in rows:
        first = next(s[row] for s in results["scorers"].values() if row in s)
        line = " | ".join(_cell(results["scorers"][n].get(row)) for n in names)
        print(f"{row:44s} ({first['n']}, {first['positives']}) | {line}")
    print("\naverage precision [95 % CI]")
    for set_name, *_ in SETS:
        print(
            f"{set_name:44s} | "
            + " | ".join(_cell(results["scorers"][n].get(set_name), "ap") for n in names)
        )
    print("\ncalibration and flags (toxicity >= 0.5)")
    for set_name, *_ in SETS:
        cells = []
        for n in names:
            f = results["scorers"][n][set_name]
            cells.append(
                f"ECE {f['ece']:.3f}, flagged {f['flagged']:.1%}, of benign {f['flagged_negatives']:.1%}"
            )
        print(f"{set_name:44s} | " + " | ".join(cells))
    print("\nbias_madlibs (toxicity): final / subgroup / BPSN / BNSP AUC")
    for n in names:
        b = results["scorers"][n].get("bias_madlibs")
        if b:
            print(
                f"  [{names.index(n)}] {b['final']:.3f} / {b['subgroup_auc']:.3f} / {b['bpsn_auc']:.3f} / {b['bnsp_auc']:.3f}"
            )
    print("\nseed comments: mean (max) per label")
    for n in names:
        s = results["scorers"][n]["seeds"]
        print(
            f"  [{names.index(n)}] "
            + ", ".join(f"{k} {v['mean']:.2f} ({v['max']:.2f})" for k, v in s.items())
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--madlibs", type=int, default=4000, help="bias_madlibs sentences scored")
    parser.add_argument(
        "--keras-python",
        default=None,
        help="a python with toxic-comment-classifier installed: adds it as a peer",
    )
    parser.add_argument("--backend", default="auto", help="backend of the model under test")
    parser.add_argument("--no-peers", action="store_true", help="score the model under test only")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = run(
        args.model,
        args.data_root,
        args.bootstrap,
        args.madlibs,
        args.keras_python,
        args.backend,
        not args.no_peers,
    )
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
