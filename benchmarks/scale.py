"""Comments/s of ``threadguard score`` on one machine: the local engine and Ray Data.

    python benchmarks/scale.py [--n 1200] [--model DIR] [--backend auto]

One run, the same archive for every row: ``--n`` news comments (C3 test comments, with
their real length mix, when ``../shared/data`` has them; generated text of similar
lengths otherwise) in threads of ``--thread-size`` under generated articles, about half
of them replies, written as a flat Parquet file. Rows:

* the Ray driver's work per comment, without Ray: reading the archive, building every
  comment's model input, reading a prediction back from JSON, building and writing the
  row (what one driver does for the whole run, on one core, whatever the cluster's size);
* local engine (``threadguard score``), the model on 1 thread and on all cores;
* Ray engine (``--engine ray``) with 1 and 2 workers (1 CPU each), end to end: the
  actors' start and model load and the driver's reading included (Ray's own start is not;
  it is printed on its own line).

Every run writes its rows, and the Ray rows are checked against the local ones. The
per-core rate (Ray, 2 workers, divided by 2; and, robust to other load on the machine,
the local engine's comments per second of CPU time on 1 thread) is what docs/scale.md
builds its estimate for 100 million comments on.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def comment_texts(n: int, seed: int) -> tuple[list[str], str]:
    """``n`` comment texts: C3 test comments when the corpora are there, else generated."""
    rng = random.Random(seed)
    try:
        from training.corpora import load_corpus

        test = load_corpus("c3", split="test").shuffle(seed=seed)
        texts = [t for t in test["text"] if t.strip()]
        origin = "C3 test comments"
    except Exception as err:  # no corpora: generated text of news-comment lengths
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import load

        texts = [load.comment_text(rng) for _ in range(n)]
        origin = f"GENERATED text (C3 unavailable: {type(err).__name__})"
    return [texts[i % len(texts)] for i in range(n)], origin


def write_archive(path: Path, texts: list[str], thread_size: int, seed: int) -> None:
    """A flat Parquet archive: threads of ``thread_size`` comments, about half replies."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import load

    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(texts), thread_size):
        art = load.article(rng)
        thread = f"t{start // thread_size}"
        for k, text in enumerate(texts[start : start + thread_size]):
            rows.append(
                {
                    "thread_id": thread,
                    "article_title": art["title"],
                    "article_body": art["text"],
                    "comment_id": f"c{k}",
                    "parent_id": f"c{rng.randrange(k)}" if k and rng.random() < 0.5 else None,
                    "author": f"user{rng.randrange(1000)}",
                    "text": text,
                }
            )
    pq.write_table(pa.Table.from_pylist(rows), path)


def driver_rate(path: Path, out: Path) -> float:
    """Comments/s of what the Ray driver does per comment, without Ray: read the archive,
    build each model input, read what the model found back from JSON (a worker's
    :class:`~classifier.schema.Scored`, here one made up), build the row, write it."""
    from classifier.io.ingest import ParseSummary, iter_inputs
    from classifier.io.options import ReadOptions
    from classifier.io.writers import JsonlRowWriter
    from classifier.schema import ModelInfo, Scored, Thread
    from classifier.scoring import score_row
    from classifier.targets import stance_target, thread_items

    labels = ["toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack"]
    scores = {k: 0.2 for k in ("support", "deny", "query", "comment", "unrelated")}
    prediction = {"stance": {"label": "comment", "scores": scores},
                  "toxicity": dict.fromkeys(labels, 0.01)}  # fmt: skip
    info = ModelInfo(name="model", version="0123456789ab", backend="onnx")
    start = time.perf_counter()
    n = 0
    with out.open("w", encoding="utf-8") as fh:
        writer = JsonlRowWriter(fh)
        for item in iter_inputs([str(path)], ReadOptions(), ParseSummary()):
            if isinstance(item, Thread):
                for comment, model_input in zip(item.comments, thread_items(item), strict=True):
                    target = stance_target(model_input)
                    answer = Scored.of(comment.text, prediction, target).model_dump_json()
                    row = score_row(item.id, comment, Scored.model_validate_json(answer), info)
                    writer.write(row.row())
                    n += 1
    return n / (time.perf_counter() - start)


def local_rate(
    path: Path, out: Path, model: str | None, backend: str, threads: int
) -> tuple[float, float]:
    """Comments per second of wall time, and per second of this process's CPU time."""
    from classifier.model.loading import load_predictor
    from classifier.scoring import ScoreRun, model_info

    predictor = load_predictor(model, backend=backend, num_threads=threads)
    run = ScoreRun(predictor, model_info(predictor))
    cpu = time.process_time()
    summary = run.run([str(path)], out, "jsonl")
    return summary.scored / summary.seconds, summary.scored / (time.process_time() - cpu)


def ray_rate(path: Path, out: Path, model: str | None, backend: str, workers: int) -> float:
    from classifier.ray_engine import score_with_ray

    summary = score_with_ray([str(path)], out, "jsonl", model=model, backend=backend,
                             workers=workers)  # fmt: skip
    return summary.scored / summary.seconds


def same_rows(local: Path, folder: Path) -> bool:
    from classifier.ray_engine import part_files

    want = [json.loads(line) for line in local.open()]
    got = [json.loads(line) for p in part_files(folder) for line in p.open()]
    if [r["comment_id"] for r in got] != [r["comment_id"] for r in want]:
        return False
    return all(
        abs(g["toxicity"][k] - w["toxicity"][k]) <= 1e-5
        and g["stance"]["label"] == w["stance"]["label"]
        for g, w in zip(got, want, strict=True)
        for k in w["toxicity"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=1200, help="comments in the archive")
    parser.add_argument("--thread-size", type=int, default=12)
    parser.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import ray

    from classifier.model.loading import load_predictor

    cores = os.cpu_count() or 1
    texts, origin = comment_texts(args.n, args.seed)
    words = sorted(len(t.split()) for t in texts)
    print(f"{args.n} comments ({origin}; median {words[len(words) // 2]} words, "
          f"{sum(w >= 100 for w in words)} of 100+), threads of {args.thread_size}, "
          f"{cores} cores, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    load_predictor(args.model, backend=args.backend)  # the ONNX export, if any, before timing
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        archive = work / "archive.parquet"
        write_archive(archive, texts, args.thread_size, args.seed)
        rates: dict[str, float] = {}
        rates["ray driver's work per comment, without Ray (1 core)"] = driver_rate(
            archive, work / "driver.jsonl"
        )
        rates["local engine, 1 thread"], per_cpu_second = local_rate(
            archive, work / "local1.jsonl", args.model, args.backend, 1
        )
        rates[f"local engine, {cores} threads"], _ = local_rate(
            archive, work / "local.jsonl", args.model, args.backend, cores
        )
        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        print(f"ray.init (local instance, 2 CPUs): {time.perf_counter() - start:.1f} s")
        try:
            for workers in (1, 2):
                out = work / f"ray{workers}"
                rates[f"ray engine, {workers} worker(s) x 1 CPU"] = ray_rate(
                    archive, out, args.model, args.backend, workers
                )
                print(f"ray, {workers} worker(s): rows equal the local engine's: "
                      f"{same_rows(work / 'local.jsonl', out)}")  # fmt: skip
        finally:
            ray.shutdown()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print()
    print("| run | comments/s |")
    print("|---|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.1f} |")
    per_core = rates["ray engine, 2 worker(s) x 1 CPU"] / 2
    print()
    print(f"per-core rate, wall time (ray, 2 workers / 2): {per_core:.1f} comments/s")
    print(f"per-core rate, CPU time (local, 1 thread): {per_cpu_second:.1f} comments per CPU-s")
    for name, rate in (("wall", per_core), ("CPU", per_cpu_second)):
        hours = 100e6 / rate / 3600
        print(f"100 million comments at the {name} per-core rate: {hours:,.0f} core-hours")


if __name__ == "__main__":
    main()
