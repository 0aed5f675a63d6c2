"""The speed benchmark's report: one row of figures per system, the Markdown tables
(absolute figures, and threadguard against each peer on each workload) and the goals
threadguard is held to.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

GOALS = {"speedup_vs_bert": 6.0, "p50_ms": 15.0, "cold_s": 3.0, "rss_mb": 600.0}
#: issue 38's throughput targets against bert-base, per backend: (mixed, thread workload)
SPEEDUP_TARGETS = {"onnx": (6.0, 8.0), "onnx-int8": (12.0, 15.0)}
WORKLOADS = ("mixed", "thread")


@dataclass
class Row:
    system: str
    throughput: dict[int, float] = field(default_factory=dict)  # threads -> comments/s
    p50: dict[int, float] = field(default_factory=dict)
    p99: dict[int, float] = field(default_factory=dict)
    cold_s: float = math.nan
    rss_mb: float = math.nan
    #: threads -> comments/s on the thread workload (a thread of comments per call)
    thread_throughput: dict[int, float] = field(default_factory=dict)

    def rates(self, workload: str) -> dict[int, float]:
        """Comments/s by torch threads on ``workload`` (``mixed`` or ``thread``)."""
        return self.thread_throughput if workload == "thread" else self.throughput


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
    measured = [w for w in WORKLOADS if any(r.rates(w) for r in rows)]
    header = ["system"]
    header += [f"{w} comments/s ({t} thr)" for w in measured for t in threads]
    header += [f"p50 / p99 ms ({t} thr)" for t in threads]
    header += ["cold start s", "peak RSS MB"]
    body = []
    for r in rows:
        line: list[Any] = [r.system]
        line += [r.rates(w).get(t, math.nan) for w in measured for t in threads]
        line += [f"{r.p50[t]:.1f} / {r.p99[t]:.1f}" if t in r.p50 else "n/a" for t in threads]
        line += [r.cold_s, r.rss_mb]
        body.append(line)
    return markdown(header, body)


def _times(ratio: float) -> str:
    """``5.34×``; small ratios keep two significant digits (``0.0027×``) instead of ``0.00×``."""
    return f"{ratio:.2f}×" if ratio >= 0.1 else f"{ratio:.2g}×"


def _ratio(ours: dict[int, float], peer: dict[int, float], threads: int) -> str:
    if threads not in ours or threads not in peer:
        return "n/a"
    return _times(ours[threads] / peer[threads])


def ratio_table(rows: Sequence[Row], threads: Sequence[int]) -> str:
    """threadguard's throughput on each measured workload, and its single-comment p50,
    as multiples of each peer's."""
    ours = [r for r in rows if r.system.startswith("threadguard")]
    peers = [r for r in rows if not r.system.startswith("threadguard")]
    measured = [w for w in WORKLOADS if any(r.rates(w) for r in rows)]
    best = max(threads)
    names = [p.system.split(" (")[0] for p in peers]
    header = ["threadguard"]
    header += [f"{w} throughput × {name}" for w in measured for name in names]
    header += [f"p50 × {name}" for name in names]
    body = []
    for o in ours:
        line: list[Any] = [o.system]
        line += [_ratio(o.rates(w), p.rates(w), best) for w in measured for p in peers]
        line += [_ratio(o.p50, p.p50, min(threads)) for p in peers]
        body.append(line)
    note = (
        f"(throughput at {best} threads; latency p50 at {min(threads)} thread(s); "
        "> 1× throughput = faster than the peer, < 1× p50 = faster than the peer)"
    )
    return markdown(header, body) + "\n" + note


def _best_speedup(ours: dict[int, float], peer: dict[int, float]) -> float | None:
    """ours / peer comments/s at the thread count where ours is fastest (None: not measured)."""
    common = [t for t in ours if t in peer]
    if not common:
        return None
    best = max(common, key=ours.__getitem__)
    return ours[best] / peer[best]


def goals(rows: Sequence[Row], threads: Sequence[int], backend: str) -> list[str]:
    ours = next(r for r in rows if r.system == f"threadguard ({backend})")
    bert = next((r for r in rows if r.system.startswith("bert-base")), None)
    p50 = min(ours.p50.values())
    out = []
    speedup = _best_speedup(ours.throughput, bert.throughput) if bert is not None else None
    if speedup is not None:
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


def speedup_targets(rows: Sequence[Row], backend: str) -> list[str]:
    """issue 38's throughput targets against bert-base (:data:`SPEEDUP_TARGETS`), on each
    workload measured, at the thread count where threadguard is fastest."""
    ours = next((r for r in rows if r.system == f"threadguard ({backend})"), None)
    bert = next((r for r in rows if r.system.startswith("bert-base")), None)
    if ours is None or bert is None or backend not in SPEEDUP_TARGETS:
        return []
    out = []
    for workload, goal in zip(WORKLOADS, SPEEDUP_TARGETS[backend], strict=True):
        speedup = _best_speedup(ours.rates(workload), bert.rates(workload))
        if speedup is None:
            continue
        verdict = "met" if speedup >= goal else "MISSED"
        out.append(
            f"threadguard ({backend}): {workload} workload throughput vs bert-base "
            f"{speedup:.1f}× (issue 38 target ≥ {goal:g}×): {verdict}"
        )
    return out
