"""The speed benchmark's workload: ``n`` (target, comment) items drawn reproducibly from
the corpora, so that the lengths are real ones (generated text of similar lengths
without them), and a summary of their lengths.
"""

from __future__ import annotations

import functools
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

_Sources = TypeVar("_Sources")

Item = dict[str, str]

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


@functools.cache
def corpus_rows(name: str, root: Path | None) -> dict[str, list[dict[str, Any]]]:
    """A corpus's rows by split, read once per run: both workloads draw on FNC-1 and
    ToxicSpans, which take tens of seconds to read."""
    from training.corpora import read_corpus

    return read_corpus(name, root).splits


def _corpus_pools(root: Path | None) -> tuple[dict[str, list[Item]], list[str]]:
    """Comments (text, own target) per source corpus, and article targets from FNC-1."""
    pools: dict[str, list[Item]] = {}
    for name, _, _ in SOURCES:
        splits = corpus_rows(name, root)
        rows = [r for split in ("train", "dev", "test") for r in splits.get(split, [])]
        pools[name] = [
            {"text": r["text"], "target": r.get("target") or ""} for r in rows if r["text"].strip()
        ]
    articles = {}
    for split in ("train", "test"):
        for r in corpus_rows("fnc1", root).get(split, []):
            lead = " ".join(r["text"].split()[:60])  # the title and first paragraph, as served
            articles[r["target"]] = f"{r['target']}. {lead}"
    return pools, sorted(articles.values())


def _synthetic_pools(seed: int) -> tuple[dict[str, list[Item]], list[str]]:
    """Generated text with lognormal lengths, for when the corpora are absent."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import load

    rng = random.Random(seed)
    pools = {
        name: [{"text": load.comment_text(rng), "target": ""} for _ in range(2000)]
        for name, _, _ in SOURCES
    }
    articles = [f"{a['title']}. {a['text'][:400]}" for a in (load.article(rng) for _ in range(200))]
    return pools, articles


def sources(
    read: Callable[[Path | None], _Sources],
    generate: Callable[[int], _Sources],
    root: Path | None,
    seed: int,
) -> tuple[_Sources, str]:
    """What ``read`` takes from the corpora under ``root``, or, when they are missing, what
    ``generate`` makes from ``seed``; and a line saying which (a workload of generated
    text must not pass for one of real lengths)."""
    try:
        return read(root), "corpora in " + str(root or "../shared/data")
    except (FileNotFoundError, OSError) as err:
        return generate(seed), f"SYNTHETIC text (corpora unavailable: {err})"


def make_workload(
    n: int, seed: int = 0, root: Path | None = None, long_share: float = 0.05
) -> tuple[list[Item], str]:
    """``n`` (target, comment) items, the same for the same seed and data; and their origin."""
    (pools, articles), origin = sources(_corpus_pools, _synthetic_pools, root, seed)
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
