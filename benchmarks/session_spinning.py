"""Two ONNX Runtime sessions run in turn: idle threads spinning (ONNX Runtime's default) or not.

A two-pass model runs its comment model's session and its stance model's session one after
the other. After a run, each session's idle intra-op threads spin for a while waiting for
more work; on a 2-core machine the spinning threads of one session take the cores from the
other's run. ``load_predictor`` turns spinning off for a two-pass model; this benchmark
measures what that buys: single-comment latency (p50 over ``--latency-n`` comments of the
mixed workload) and throughput on the thread workload (threads of 50 under one article),
each arm with a freshly loaded predictor, the arms alternating within each of ``--runs``
rounds, medians over the rounds.

    python benchmarks/session_spinning.py [--model DIR] [--runs 3] [--latency-n 30]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _speed.threads import make_threads
from _speed.workload import make_workload

import classifier.model.onnx_session as onnx_session
from classifier.model.loading import load_predictor

ORIGINAL = onnx_session.OnnxSession.__init__


def _forced(spin: bool) -> Any:
    """OnnxSession's constructor with every session's spinning set to ``spin``, whatever
    ``load_predictor`` asks for."""

    def init(self: Any, path: Any, num_threads: int | None = None, **_: Any) -> None:
        ORIGINAL(self, path, num_threads, spinning=spin)

    return init


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: shipped)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-n", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    threads, origin = make_threads(100, 50, 0, args.data_root)
    groups = [list(w.items) for w in threads]
    items, _ = make_workload(100, 0, args.data_root)
    single = random.Random(2).sample(items, min(args.latency_n, len(items)))
    print(f"workload from {origin}; {sum(map(len, groups))} thread comments, {len(single)} single")
    arms = {"spinning": _forced(True), "no spinning": _forced(False)}
    found: dict[str, dict[str, list[float]]] = {a: {"p50": [], "thread": []} for a in arms}
    for run in range(args.runs):
        for arm, init in arms.items():
            onnx_session.OnnxSession.__init__ = init  # type: ignore[method-assign]
            predictor = load_predictor(args.model, backend="onnx", num_threads=args.threads)
            for item in single[:5]:
                predictor.predict([item])
            latencies = []
            for item in single:
                started = time.perf_counter()
                predictor.predict([item])
                latencies.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            for group in groups:
                predictor.predict(group)
            rate = sum(map(len, groups)) / (time.perf_counter() - started)
            found[arm]["p50"].append(statistics.median(latencies))
            found[arm]["thread"].append(rate)
            print(f"run {run}: {arm}: p50 {found[arm]['p50'][-1]:.1f} ms, {rate:.1f} comments/s")
    onnx_session.OnnxSession.__init__ = ORIGINAL  # type: ignore[method-assign]
    for arm in arms:
        p50 = statistics.median(found[arm]["p50"])
        rate = statistics.median(found[arm]["thread"])
        print(f"{arm}: single-comment p50 {p50:.1f} ms, thread workload {rate:.1f} comments/s")


if __name__ == "__main__":
    main()
