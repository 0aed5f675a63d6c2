"""What the comment model and its toxic spans cost: comments/s, in one process.

The same news comments (a seeded sample of C3 test, with their length mix: about a fifth
are 100+ words) are scored by the shipped model three ways, through ``predict`` (what
`threadguard score` calls): with its comment model and spans (the default), with the
comment model and ``--no-spans``, and with the stance pass only (v0.3.1's cost). Runs
alternate; the medians and their ratios are printed.

    python benchmarks/two_pass_cost.py [--n 800] [--runs 3] [--backend onnx]
"""

from __future__ import annotations

import argparse
import statistics
import time

from classifier.model.loading import load_predictor
from classifier.model.predictor import PredictOptions
from training.corpora import load_corpus

SPANS = "comment model, spans (default)"
NO_SPANS = "comment model, --no-spans"
STANCE = "stance pass only (v0.3.1)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--n", type=int, default=800)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    test = load_corpus("c3", split="test").shuffle(seed=0)
    texts = list(test.select(range(min(args.n, len(test))))["text"])
    items = [
        {"text": t, "target": "An opinion article's title\nIts first paragraph."} for t in texts
    ]
    words = sorted(len(t.split()) for t in texts)
    no_spans = load_predictor(
        args.model,
        backend=args.backend,
        num_threads=args.threads,
        options=PredictOptions(spans=False),
    )
    kinds = {
        SPANS: load_predictor(args.model, backend=args.backend, num_threads=args.threads),
        NO_SPANS: no_spans,
        STANCE: load_predictor(
            args.model, backend=args.backend, num_threads=args.threads, comment_model=False
        ),
    }
    for predictor in kinds.values():
        predictor.predict(items[:64])  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(args.runs):
        for name, predictor in kinds.items():
            start = time.perf_counter()
            predictor.predict(items)
            rates[name].append(len(items) / (time.perf_counter() - start))
    print(
        f"{len(items)} C3 test comments (median {words[len(words) // 2]} words, "
        f"{sum(w >= 100 for w in words)} of 100+), backend {args.backend}, "
        f"{args.threads} threads, {args.runs} runs each"
    )
    median = {name: statistics.median(found) for name, found in rates.items()}
    for name, found in rates.items():
        runs = ", ".join(f"{r:.1f}" for r in found)
        print(f"  {name:36s} median {median[name]:6.1f} comments/s  runs [{runs}]")
    print(f"  ratio spans / no spans: {median[SPANS] / median[NO_SPANS]:.2f}")
    print(f"  ratio spans / stance only: {median[SPANS] / median[STANCE]:.2f}")


if __name__ == "__main__":
    main()
