"""How much of threadguard's time on the thread workload goes into encoding targets.

Today's model reads each comment twice: a comment model reads it alone (toxicity,
constructiveness, spans) and a stance model reads the (target, comment) pair, so the
article's title and lead, or the parent comment, is encoded again with every comment
that answers it. The share is measured by timing the same threads three ways, each
thread in one call, the three interleaved within each of ``runs`` runs (so that a load
that comes and goes weighs on all three alike), and taking medians:

1. **as scored**: ``predict`` on the thread's inputs, as ``threadguard score`` does;
2. **no target**: ``predict`` on the same comments with an empty target and context: the
   comment model's work is unchanged, the stance model reads each comment alone;
3. **comment model alone**: the comment model's pass over the comments (spans
   decoded as ``predict`` decodes them), where the model has one.

Target encoding is (1) - (2); the stance pass is (1) - (3), everything ``predict`` does
beyond the comment model (the pairs' tokenisation, the stance model's forward passes,
the rows); the share of the stance pass is their ratio. It is net of truncation: a
comment too long for the pair is read further when alone (the room the target held goes
to the comment), so on long comments (2) does a little more comment work and the share
is, if anything, understated. The stance model's input tokens with and without targets
are counted on the same inputs, a check on the timing; and, for a model that would
encode each distinct target once per thread, the share of today's target tokens that
would still be encoded (each distinct target's tokens once, against every comment's).
The figures are differences of medians: on a loaded machine they are noisy, and can
even come out negative.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from _speed.systems import PredictorScorer, Setup
from _speed.threads import ThreadWork, without_targets


@dataclass
class TargetShare:
    """The figures of one measurement (ms and tokens per comment)."""

    backend: str
    threads: int
    runs: int
    comments: int
    n_threads: int
    ms_scored: float
    ms_no_target: float
    ms_comment_model: float | None  # None: the model has no separate comment model
    tokens_scored: float
    tokens_no_target: float
    distinct_targets: float  # per thread
    distinct_token_share: float  # of today's target tokens, those of distinct targets

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        target = self.ms_scored - self.ms_no_target
        head = (
            f"target encoding, thread workload ({self.backend}, {self.threads} thread(s), "
            f"median of {self.runs}; {self.comments} comments in {self.n_threads} threads):"
        )
        timing = (
            f"  scored as served {self.ms_scored:.2f} ms/comment; the same comments with no "
            f"target {self.ms_no_target:.2f}"
        )
        if self.ms_comment_model is None:
            share = (
                f"  no separate comment model: target tokens take {target:.2f} ms/comment, "
                f"{_percent(target, self.ms_scored)} of all scoring"
            )
        else:
            timing += f"; the comment model alone {self.ms_comment_model:.2f}"
            stance = self.ms_scored - self.ms_comment_model
            share = (
                f"  stance pass (scoring less the comment model) {stance:.2f} ms/comment, "
                f"{self.ms_no_target - self.ms_comment_model:.2f} with no target: target "
                f"tokens take {target:.2f} ms/comment, {_percent(target, stance)} of the "
                f"stance pass, {_percent(target, self.ms_scored)} of all scoring"
            )
        tokens = (
            f"  stance model input: {self.tokens_scored:.0f} tokens/comment with the targets, "
            f"{self.tokens_no_target:.0f} without "
            f"({_percent(self.tokens_scored - self.tokens_no_target, self.tokens_scored)} "
            f"target); {self.distinct_targets:.1f} distinct targets per thread of "
            f"{self.comments // self.n_threads}: encoding each once would encode "
            f"{100 * self.distinct_token_share:.0f}% of the target tokens encoded now"
        )
        return [head, timing, share, tokens]


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole > 0 else "n/a"


def _median_ms(seconds: Sequence[float], n: int) -> float:
    return 1000 * statistics.median(seconds) / n


def measure(
    setup: Setup, work: Sequence[ThreadWork], threads: int, backend: str, runs: int
) -> TargetShare:
    """Time the threads as scored, with no targets and through the comment model alone
    (see the module docstring), and count the stance model's input tokens."""
    scorer = setup.make(f"ours:{backend}", threads)
    assert isinstance(scorer, PredictorScorer)
    predictor = scorer.predictor
    comment_model = getattr(predictor, "comment_model", None)
    bare = [without_targets(w.items) for w in work]
    ways: dict[str, Callable[[int], Any]] = {
        "scored": lambda i: predictor.predict(work[i].items),
        "no_target": lambda i: predictor.predict(bare[i]),
    }
    if comment_model is not None:  # as predict runs it: spans as the predictor's options say
        ways["comment"] = lambda i: comment_model.comment_scores(
            [it["text"] for it in work[i].items], spans=predictor.options.spans
        )
    taken: dict[str, list[float]] = {way: [] for way in ways}
    for run in ways.values():  # warm-up
        run(0)
    for _ in range(runs):
        for way, run in ways.items():
            started = time.perf_counter()
            for i in range(len(work)):
                run(i)
            taken[way].append(time.perf_counter() - started)
    n = sum(len(w.items) for w in work)
    encoder = predictor.input_encoder

    def lengths(items: Sequence[Any]) -> list[int]:
        encoded = encoder.encode(
            [it["target"] for it in items],
            [it["context"] for it in items],
            [it["text"] for it in items],
        )
        return [len(e) for e in encoded]

    full = [lengths(w.items) for w in work]
    alone = [lengths(b) for b in bare]
    target_tokens = distinct_tokens = distinct = 0
    for w, with_t, without_t in zip(work, full, alone, strict=True):
        per_target: dict[tuple[str, str], int] = {}
        for item, a, b in zip(w.items, with_t, without_t, strict=True):
            key = (item["target"], item["context"])
            per_target[key] = max(per_target.get(key, 0), a - b)
            target_tokens += a - b
        distinct_tokens += sum(per_target.values())
        distinct += len(per_target)
    return TargetShare(
        backend=backend,
        threads=threads,
        runs=runs,
        comments=n,
        n_threads=len(work),
        ms_scored=_median_ms(taken["scored"], n),
        ms_no_target=_median_ms(taken["no_target"], n),
        ms_comment_model=_median_ms(taken["comment"], n) if "comment" in taken else None,
        tokens_scored=sum(map(sum, full)) / n,
        tokens_no_target=sum(map(sum, alone)) / n,
        distinct_targets=distinct / len(work),
        distinct_token_share=distinct_tokens / target_tokens if target_tokens else 0.0,
    )
