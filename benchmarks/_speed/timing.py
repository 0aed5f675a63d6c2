"""The speed benchmark's timing harness: throughput and single-comment latency of a
scorer (medians over runs, after a warm-up), and the figures of the machine they were
measured on (peak resident memory, CPU name, load average).
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from _speed.systems import Scorer
from _speed.workload import Item


def throughput(scorer: Scorer, items: Sequence[Item], runs: int) -> float:
    """Median comments/s over ``runs`` passes over ``items`` (after a warm-up batch)."""
    return grouped_throughput(scorer, [items], runs)


def grouped_throughput(scorer: Scorer, groups: Sequence[Sequence[Item]], runs: int) -> float:
    """Median comments/s over ``runs`` passes, each scoring every group in one call (a
    thread at a time, as ``threadguard score`` and the hook see them), after a warm-up
    batch."""
    scorer.score(groups[0][:32])
    n = sum(len(g) for g in groups)
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        for group in groups:
            scorer.score(group)
        rates.append(n / (time.perf_counter() - started))
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
