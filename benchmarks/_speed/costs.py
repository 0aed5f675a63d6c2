"""What threadguard's own inference cost is made of: throughput by input length and
batch size (the cost model), the first load of an ONNX backend (the export), and the
share of batch scoring that is tokenisation and padding.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from _speed.report import markdown
from _speed.systems import PredictorScorer, Setup
from _speed.timing import throughput
from _speed.workload import Item, make_workload

LENGTH_BUCKETS = (32, 64, 128, 256, 512)


def scaling(
    setup: Setup,
    backends: Sequence[str],
    threads: int,
    batch_sizes: Sequence[int],
    per_bucket: int,
    runs: int,
) -> str:
    """Throughput (comments/s) of threadguard by input length (pair tokens) and batch size."""
    from classifier.model.loading import load_predictor

    predictors = {b: load_predictor(setup.model, num_threads=threads, backend=b) for b in backends}
    encoder = next(iter(predictors.values())).input_encoder
    pool, _ = make_workload(max(4000, 8 * per_bucket), setup.seed + 1, setup.data_root, 0.1)
    lengths = [
        len(e)
        for e in encoder.encode([it["target"] for it in pool], None, [it["text"] for it in pool])
    ]
    limit = encoder.max_length
    edges = [b for b in LENGTH_BUCKETS if b < limit] + [limit]
    buckets: list[tuple[str, list[Item]]] = []
    low = 0
    for high in edges:
        chosen = [it for it, n in zip(pool, lengths, strict=True) if low < n <= high]
        if chosen:
            buckets.append((f"{low + 1}–{high}", chosen[:per_bucket]))
        low = high
    header = ["backend", "tokens", "n", *[f"batch {b}" for b in batch_sizes], "tokens/s @32"]
    body = []
    for backend, predictor in predictors.items():
        for label, items in buckets:
            line: list[Any] = [backend, label, len(items)]
            mean_len = line_tokens = math.nan
            for b in batch_sizes:
                sized = predictor.with_options(batch_size=b)
                rate = throughput(PredictorScorer(sized), items, runs)
                line.append(rate)
                if b == 32:
                    encoded = encoder.encode(
                        [it["target"] for it in items], None, [it["text"] for it in items]
                    )
                    mean_len = sum(len(e) for e in encoded) / len(encoded)
                    line_tokens = rate * mean_len
            line.append(line_tokens)
            body.append(line)
    return markdown(header, body) + f"\n(comments/s at {threads} thread(s), median of {runs})"


def first_export(setup: Setup, backend: str, threads: int) -> str:
    """How long the first load of an ONNX backend takes: the export into an empty cache
    (cold start above reads the cached export, as every load after the first does)."""
    from classifier.model.loading import load_predictor

    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        load_predictor(setup.model, backend=backend, num_threads=threads, cache_dir=cache)
        took = time.perf_counter() - started
    return (
        f"{backend}: first load, exporting into an empty cache: {took:.1f} s once per model "
        "(in this process, torch already imported)"
    )


def tokenizer_share(setup: Setup, items: Sequence[Item], threads: int, backend: str) -> str:
    """How much of batch scoring is tokenisation and padding (the rest is the model)."""
    from classifier.model.loading import load_predictor

    predictor = load_predictor(setup.model, num_threads=threads, backend=backend)
    encoder = predictor.input_encoder
    total = 1 / throughput(PredictorScorer(predictor), items, 3) * len(items)
    started = time.perf_counter()
    encoded = encoder.encode([it["target"] for it in items], None, [it["text"] for it in items])
    for i in range(0, len(encoded), 32):
        encoder.collate(encoded[i : i + 32], "np" if backend.startswith("onnx") else "pt")
    prep = time.perf_counter() - started
    return (
        f"tokenisation + padding: {prep * 1000 / len(items):.2f} ms/comment, "
        f"{100 * prep / total:.0f}% of batch scoring ({backend}, {threads} thread(s))"
    )
