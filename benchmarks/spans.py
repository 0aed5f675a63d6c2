"""Toxic spans benchmark: SemEval-2021 Task 5's span F1 of the model beside two baselines.

On the official test posts (tsd_test.csv, 2000 posts), the task's metric: per-post F1
over character offsets, averaged over posts (a post with no gold span scores 1 only
when nothing is predicted), with a 95 % bootstrap interval and paired differences
from the model, for

* the model: the spans ``predict`` returns (the span head at the threshold saved in
  the model);
* a lexicon baseline: the words most often inside a gold span in tsd_train.csv, by
  word-level precision, the precision cut tuned on tsd_trial.csv, every occurrence
  marked;
* an attribution baseline: gradient x input saliency of the comment model's toxicity
  logit per token (torch), whole words above a threshold tuned on tsd_trial.csv;
* a random reference (each word marked with probability 0.5), beside the published
  random baseline (~0.17) and the best system (HITSZ-HLT, 0.7083).

Each also on the posts with a gold span, and the share of posts without one predicted
empty. Then the cost of spans: comments/s of ``predict`` with and without span decoding,
median of 3 runs each on the same comments.

    python -m benchmarks.spans --backend onnx --json /tmp/bench_spans.json
    python -m benchmarks.spans --model /tmp/tgm --limit 200      # a quick check
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from classifier.model.constants import COMMENT_DIR, model_dir
from classifier.model.loading import load_predictor
from classifier.model.predictor import BatchPredictor
from classifier.model.spans import span_chars
from training.span_eval import (
    PUBLISHED_BEST_F1,
    PUBLISHED_BEST_SYSTEM,
    PUBLISHED_RANDOM_F1,
    Attribution,
    GoldPost,
    LexiconBaseline,
    compare,
    random_words,
    read_tsd,
    summarise,
    tsd_path,
)

logger = logging.getLogger(__name__)

#: Comments timed with and without spans, and the runs of each.
SPEED_COMMENTS = 300
SPEED_RUNS = 3


def _items(posts: list[GoldPost]) -> list[dict[str, str]]:
    return [{"text": p.text, "target": "", "context": ""} for p in posts]


def model_spans(predictor: BatchPredictor, posts: list[GoldPost]) -> list[list[int]]:
    """The offsets of the spans ``predict`` returns for each post."""
    return [span_chars(row.get("spans", [])) for row in predictor.predict(_items(posts))]


def speed(
    predictor: BatchPredictor, posts: list[GoldPost], runs: int = SPEED_RUNS
) -> dict[str, Any]:
    """Comments/s of ``predict`` with span decoding and without (the ``spans`` option
    off, in a predictor derived from ``predictor``), median of ``runs`` runs each,
    alternated so that drift in the machine's load hits both alike; after one warm-up run."""
    items = _items(posts)
    predictor.predict(items[:32])
    variants = {flag: predictor.with_options(spans=flag) for flag in (True, False)}
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(runs):
        for flag, variant in variants.items():
            start = time.perf_counter()
            variant.predict(items)
            times[flag].append(time.perf_counter() - start)
    rate = {flag: len(items) / float(np.median(t)) for flag, t in times.items()}
    return {
        "comments": len(items),
        "runs": runs,
        "with_spans_per_s": rate[True],
        "without_spans_per_s": rate[False],
        "ratio": rate[True] / rate[False],
        "seconds": {"with_spans": times[True], "without_spans": times[False]},
        "load_average": list(os.getloadavg()),
        "cpus": os.cpu_count(),
    }


def run(
    model: str | None,
    backend: str = "onnx",
    limit: int | None = None,
    n_boot: int = 1000,
    data_root: str | None = None,
    attribution: bool = True,
    timing: bool = True,
) -> dict[str, Any]:
    """Every figure of the benchmark (see the module docstring) as a JSON-ready dict."""
    test = read_tsd(tsd_path("test", data_root))
    trial = read_tsd(tsd_path("dev", data_root))
    train = read_tsd(tsd_path("train", data_root))
    if limit is not None:
        test, trial = test[:limit], trial[:limit]
    gold = [p.gold for p in test]
    texts = [p.text for p in test]
    folder = model_dir(model)
    predictor = load_predictor(folder, backend=backend)
    comment = predictor.comment_model or predictor
    if not comment.span_labels:
        raise SystemExit(f"{folder}: the comment model has no span head (no span_labels)")
    results: dict[str, Any] = {
        "model": str(folder),
        "model_version": predictor.model_version,
        "backend": backend,
        "test_posts": len(test),
        "trial_posts": len(trial),
        "train_posts": len(train),
        "bootstrap": n_boot,
        "published": {
            "random": PUBLISHED_RANDOM_F1,
            "best": PUBLISHED_BEST_F1,
            "best_system": PUBLISHED_BEST_SYSTEM,
        },
        "systems": {},
    }
    systems: dict[str, dict[str, Any]] = results["systems"]

    t0 = time.perf_counter()
    found = summarise(model_spans(predictor, test), gold, n_boot)
    found.update(threshold=comment.span_threshold, seconds=time.perf_counter() - t0)
    systems["model spans"] = found
    logger.info("model spans: F1 %.4f", found["f1"])

    t0 = time.perf_counter()
    lexicon = LexiconBaseline.fit(train)
    trial_f1 = lexicon.tune(trial)
    found = summarise(lexicon.predict(texts), gold, n_boot)
    found.update(
        threshold=lexicon.threshold,
        trial_f1=trial_f1,
        min_count=lexicon.min_count,
        vocabulary=len(lexicon.vocabulary()),
        top_words=[w for w, _, _ in lexicon.top_words(15)],
        seconds=time.perf_counter() - t0,
    )
    systems["lexicon (tsd_train precision)"] = found
    logger.info("lexicon: F1 %.4f (%d words)", found["f1"], found["vocabulary"])

    if attribution:
        from classifier.model.network import ThreadguardModel

        t0 = time.perf_counter()
        source = folder / COMMENT_DIR if (folder / COMMENT_DIR).is_dir() else folder
        saliency = Attribution(ThreadguardModel.from_pretrained(source))
        tuned = saliency.tune(
            saliency.token_scores([p.text for p in trial]), [p.gold for p in trial]
        )
        chosen = saliency.spans(
            saliency.token_scores(texts), tuned["threshold"], tuned["normalise"]
        )
        found = summarise(chosen, gold, n_boot)
        found.update(
            threshold=tuned["threshold"],
            normalise=tuned["normalise"],
            trial_f1=tuned["f1"],
            trial_raw_f1=tuned["raw_f1"],
            trial_normalised_f1=tuned["normalised_f1"],
            seconds=time.perf_counter() - t0,
        )
        systems["attribution (grad x input)"] = found
        logger.info("attribution: F1 %.4f", found["f1"])

    systems["random words (p = 0.5)"] = summarise(random_words(texts), gold, n_boot)
    reference = systems["model spans"]
    for found in systems.values():
        if found is not reference:
            found["vs_model"] = compare(reference, found)
    if timing:
        results["speed"] = speed(predictor, test[:SPEED_COMMENTS])
    return results


def _cell(value: float | None, ci: list[float] | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else f"{value:.4f}"


def print_table(results: dict[str, Any]) -> None:
    """The benchmark's figures as plain-text tables."""
    print(f"model: {results['model']} ({results['model_version']}, {results['backend']})")
    print(
        f"SemEval-2021 Task 5 span F1 on tsd_test.csv: {results['test_posts']} posts "
        f"(thresholds tuned on {results['trial_posts']} tsd_trial posts, lexicon from "
        f"{results['train_posts']} tsd_train posts; 95 % bootstrap CI, {results['bootstrap']} resamples)"
    )
    header = f"{'system':32s} | {'span F1 [95 % CI]':26s} | {'posts with gold: F1':26s} | no gold: empty | vs model"
    print("\n" + header)
    print("-" * len(header))
    for name, found in results["systems"].items():
        with_gold, no_gold = found["with_gold"], found["no_gold"]
        diff = found.get("vs_model")
        versus = (
            f"{diff['difference']:+.4f} [{diff['ci'][0]:+.4f}, {diff['ci'][1]:+.4f}]"
            if diff and diff.get("ci")
            else ""
        )
        share = no_gold["empty_share"]
        print(
            f"{name:32s} | {_cell(found['f1'], found['ci']):26s} | "
            f"{_cell(with_gold['f1'], with_gold['ci']):26s} | "
            f"{'-' if share is None else f'{share:.1%}':>14s} | {versus}"
        )
    published = results["published"]
    print(f"{'published random baseline':32s} | {published['random']:.2f}")
    print(f"{'published best: ' + published['best_system']:32s} | {published['best']:.4f}")
    n = results["systems"]["model spans"]
    print(
        f"\nposts with a gold span: {n['with_gold']['n']}, without: {n['no_gold']['n']}; "
        f"'no gold: empty' = share of the posts without a gold span predicted empty"
    )
    print(f"model span threshold (as shipped): {n['threshold']}")
    lexicon = results["systems"].get("lexicon (tsd_train precision)")
    if lexicon:
        print(
            f"lexicon: {lexicon['vocabulary']} words seen >= {lexicon['min_count']} times with "
            f"precision >= {lexicon['threshold']} (trial F1 {lexicon['trial_f1']:.4f}): "
            + ", ".join(lexicon["top_words"])
        )
    saliency = results["systems"].get("attribution (grad x input)")
    if saliency:
        print(
            f"attribution: threshold {saliency['threshold']:.4g} on "
            f"{'per-post normalised' if saliency['normalise'] else 'raw'} scores (trial F1 raw "
            f"{saliency['trial_raw_f1']:.4f}, normalised {saliency['trial_normalised_f1']:.4f})"
        )
    cost = results.get("speed")
    if cost:
        print(
            f"\ncost of spans ({results['backend']}, {cost['comments']} comments, median of "
            f"{cost['runs']} runs): {cost['with_spans_per_s']:.1f} comments/s with spans, "
            f"{cost['without_spans_per_s']:.1f} without; ratio {cost['ratio']:.2f} "
            f"(load average {cost['load_average'][0]:.2f} on {cost['cpus']} CPUs)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--backend", default="onnx", help="backend of the model's spans and timing")
    parser.add_argument("--limit", type=int, default=None, help="first N test and trial posts only")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--no-attribution", action="store_true", help="skip the torch baseline")
    parser.add_argument("--no-speed", action="store_true", help="skip the timing")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = run(
        args.model,
        args.backend,
        args.limit,
        args.bootstrap,
        args.data_root,
        attribution=not args.no_attribution,
        timing=not args.no_speed,
    )
    print_table(results)
    if args.json:
        clean = {
            **results,
            "systems": {
                name: {k: v for k, v in found.items() if k != "samples"}
                for name, found in results["systems"].items()
            },
        }
        args.json.write_text(json.dumps(clean, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
