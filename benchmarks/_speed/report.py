"""The speed benchmark's report: one row of figures per system, the Markdown tables
(absolute figures, and threadguard against each peer) and the goals threadguard is
held to.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

GOALS = {"speedup_vs_bert": 6.0, "p50_ms": 15.0, "cold_s": 3.0, "rss_mb": 600.0}


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
