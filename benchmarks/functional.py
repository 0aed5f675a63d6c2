"""Functional test suite for moderation decisions: short comments by kind, pass rates per kind.

Aggregate scores on news corpora hide the errors a moderator meets every day: a plain
threat approved, "I love Muslims." highlighted as an identity attack, someone quoting
abuse in order to reject it held as abusive. This suite asks those questions directly.
``benchmarks/functional_cases.jsonl`` holds short comments written for this project (not
taken from any published suite, nor from the training data generator, so that it measures
how the model generalises), each with its ``kind``, the ``expected`` decision class
(``held``: review or reject; ``approved``: approve or feature) and a ``label`` expectation:

* ``threat``, ``insult|toxicity``, ...: one of these labels scores at or above 0.5;
* ``none``: no label scores at or above 0.5 and the comment carries no span at all (an
  approved comment has nothing to explain, issue 41 rule 3).

Identity mentions also name their ``identity`` term, so that spans on it are counted.

Each case goes through the library as a user calls it (``Threadguard.predict`` with the
moderation policy, default: configs/moderation.yaml). Printed per kind: n, the decision
pass rate and the label pass rate with 95 % Wilson intervals; then the aggregate rows of
issue 41's targets (threats held, identity mentions held and highlighted, counter-speech
approved, hateful content held, content neither hateful nor abusive approved), each
pooled over its cases with the target beside it.

Profanity that abuses no one ("this fucking weather") is expected ``held`` because the
shipped policy holds ``obscene`` >= 0.5 for a moderator; a site that allows swearing would
change the policy, and this kind's expectation with it.

    python benchmarks/functional.py                          # the shipped model
    python -m benchmarks.functional --backend onnx --json /tmp/functional.json
    python -m benchmarks.functional --model runs/v0.6 --failures 3
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CASES = Path(__file__).with_name("functional_cases.jsonl")
#: Decisions that count as held for a moderator, and as approved (shown).
HELD = frozenset({"review", "reject"})
APPROVED = frozenset({"approve", "feature"})
EXPECTED = ("held", "approved")
#: A label "fires" at this score: the probability the model is calibrated to read as
#: "more likely than not", independent of the policy's thresholds.
LABEL_CUT = 0.5
#: The ``label`` value that asks for no label and no span.
NONE = "none"

#: The kinds of the suite, in the order they print; at least ``MIN_CASES`` cases each.
KINDS: tuple[str, ...] = (
    "threat",
    "violence_mention",
    "identity_neutral",
    "identity_positive",
    "identity_hate_explicit",
    "implicit_derogation",
    "negated_positive",
    "negated_hate",
    "counter_speech_quote",
    "counter_speech_reference",
    "obfuscated_insult",
    "insult",
    "profanity",
    "reclaimed_or_homonymous",
    "spam",
    "benign",
)
MIN_CASES = 25
IDENTITY_KINDS = ("identity_neutral", "identity_positive")
COUNTER_SPEECH = ("counter_speech_quote", "counter_speech_reference")
HATEFUL = ("identity_hate_explicit", "implicit_derogation", "negated_positive")
ABUSIVE = (*HATEFUL, "threat", "insult", "obfuscated_insult")
#: Issue 41's "neither hateful nor abusive" content (violence_mention and benign have rows
#: of their own: they mention no group and quote no abuse).
NEITHER = (*IDENTITY_KINDS, *COUNTER_SPEECH, "negated_hate", "reclaimed_or_homonymous")


@dataclass(frozen=True)
class Case:
    """One test comment and what a good moderation model does with it."""

    kind: str
    text: str
    #: ``held`` or ``approved``
    expected: str
    #: labels of which one should reach ``LABEL_CUT``; empty: none may, and no span
    labels: tuple[str, ...]
    #: the identity term the comment mentions (identity kinds), for the span counts
    identity: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What the library said about one comment: the parts of a ``Result`` the suite reads,
    so that the counting can be tested with a fake predictor."""

    decision: str
    toxicity: Mapping[str, float]
    #: ``(start, end, label)`` of each span
    spans: tuple[tuple[int, int, str], ...] = ()


@dataclass(frozen=True)
class Checked:
    """One case's verdicts."""

    decision_pass: bool
    label_pass: bool
    held: bool
    any_span: bool
    #: a span overlapping an occurrence of the identity term (False without one)
    identity_span: bool
    #: an ``identity_attack`` span overlapping it
    identity_attack_span: bool


#: Scores a batch of texts, in order.
Scorer = Callable[[Sequence[str]], list[Outcome]]


def load_cases(path: Path = CASES) -> list[Case]:
    """The cases of a JSONL file, checked: a known kind and expectation, a non-empty text,
    the identity term inside the text. ``ValueError`` names the line of the first problem,
    because a broken case would otherwise only show as a strange pass rate."""
    cases: list[Case] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            kind, text, expected, label = row["kind"], row["text"], row["expected"], row["label"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a case ({exc})") from exc
        identity = row.get("identity")
        if kind not in KINDS:
            raise ValueError(f"{path}:{number}: unknown kind {kind!r}")
        if expected not in EXPECTED:
            raise ValueError(f"{path}:{number}: expected must be one of {EXPECTED}")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{path}:{number}: empty text")
        if identity is not None and identity not in text:
            raise ValueError(f"{path}:{number}: identity {identity!r} is not in the text")
        labels = () if label == NONE else tuple(label.split("|"))
        cases.append(Case(kind, text, expected, labels, identity))
    return cases


def _overlaps(span: tuple[int, int, str], ranges: Iterable[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in ranges)


def identity_ranges(text: str, term: str) -> list[tuple[int, int]]:
    """Every occurrence of ``term`` in ``text`` as ``[start, end)``."""
    found, start = [], text.find(term)
    while start >= 0:
        found.append((start, start + len(term)))
        start = text.find(term, start + 1)
    return found


def check(case: Case, outcome: Outcome) -> Checked:
    """Whether the outcome passes the case's decision and label expectations."""
    held = outcome.decision in HELD
    if not held and outcome.decision not in APPROVED:
        raise ValueError(f"unknown decision {outcome.decision!r}")
    if case.labels:
        label_pass = any(outcome.toxicity.get(name, 0.0) >= LABEL_CUT for name in case.labels)
    else:
        label_pass = not outcome.spans and all(p < LABEL_CUT for p in outcome.toxicity.values())
    ranges = identity_ranges(case.text, case.identity) if case.identity else []
    on_identity = [s for s in outcome.spans if _overlaps(s, ranges)]
    return Checked(
        decision_pass=held == (case.expected == "held"),
        label_pass=label_pass,
        held=held,
        any_span=bool(outcome.spans),
        identity_span=bool(on_identity),
        identity_attack_span=any(s[2] == "identity_attack" for s in on_identity),
    )


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of ``k`` successes in ``n`` (95 % at z = 1.96): unlike the
    normal approximation it stays inside [0, 1] and is honest at 0 or n of 25, which is
    where a suite this size often is. ``(0, 1)`` when ``n`` is 0."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate(flags: Sequence[bool]) -> dict[str, Any]:
    """Share of true flags with its Wilson interval; ``rate`` is None for no cases."""
    k, n = sum(flags), len(flags)
    return {"k": k, "n": n, "rate": k / n if n else None, "ci": list(wilson(k, n))}


#: Aggregate rows: (name, kinds, what is counted, target as (comparison, value) or None).
AGGREGATES: tuple[tuple[str, tuple[str, ...], str, tuple[str, float] | None], ...] = (
    ("threats held", ("threat",), "held", (">=", 0.90)),
    ("threat >= 0.5 among threats", ("threat",), "label_pass", (">=", 0.80)),
    ("identity mentions held", IDENTITY_KINDS, "held", ("<=", 0.03)),
    ("identity mentions: span on the term", IDENTITY_KINDS, "identity_span", ("<=", 0.05)),
    ("identity mentions: identity_attack span", IDENTITY_KINDS, "identity_attack_span", None),
    ("identity mentions: any span", IDENTITY_KINDS, "any_span", ("<=", 0.05)),
    ("counter-speech approved", COUNTER_SPEECH, "decision_pass", (">=", 0.60)),
    ("hateful content held", HATEFUL, "held", (">=", 0.80)),
    ("abusive content held (hateful, threats, insults)", ABUSIVE, "held", None),
    ("neither hateful nor abusive: approved", NEITHER, "decision_pass", (">=", 0.70)),
    ("violence mentions approved", ("violence_mention",), "decision_pass", None),
    ("benign: approved", ("benign",), "decision_pass", None),
)


def summarise(cases: Sequence[Case], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Per-kind decision and label pass rates, the aggregate rows and each case's verdict
    (to read the failures), from the outcomes of ``cases`` (in the same order)."""
    if len(cases) != len(outcomes):
        raise ValueError(f"{len(outcomes)} outcomes for {len(cases)} cases")
    checked = [check(c, o) for c, o in zip(cases, outcomes, strict=True)]
    kinds = [k for k in KINDS if any(c.kind == k for c in cases)]
    per_kind: dict[str, Any] = {}
    for kind in kinds:
        mine = [v for c, v in zip(cases, checked, strict=True) if c.kind == kind]
        first = next(c for c in cases if c.kind == kind)
        per_kind[kind] = {
            "n": len(mine),
            "expected": first.expected,
            "label": "|".join(first.labels) or NONE,
            "decision": rate([v.decision_pass for v in mine]),
            "label_pass": rate([v.label_pass for v in mine]),
            # a "none" label check fails on a span or on a score: this tells the two apart
            "with_span": rate([v.any_span for v in mine]),
        }
    aggregates: dict[str, Any] = {}
    for name, group, field, target in AGGREGATES:
        flags = [getattr(v, field) for c, v in zip(cases, checked, strict=True) if c.kind in group]
        if not flags:
            continue
        found = rate(flags)
        found["kinds"] = list(group)
        if target is not None and found["rate"] is not None:
            op, value = target
            found["target"] = f"{op} {value:.0%}"
            found["met"] = found["rate"] >= value if op == ">=" else found["rate"] <= value
        aggregates[name] = found
    per_case = [
        {
            "kind": c.kind,
            "text": c.text,
            "expected": c.expected,
            "decision": o.decision,
            "decision_pass": v.decision_pass,
            "label_pass": v.label_pass,
            "toxicity": {k: round(float(p), 4) for k, p in o.toxicity.items()},
            "spans": [f"{c.text[s[0] : s[1]]} ({s[2]})" for s in o.spans],
        }
        for c, o, v in zip(cases, outcomes, checked, strict=True)
    ]
    return {"kinds": per_kind, "aggregates": aggregates, "per_case": per_case}


def library_scorer(
    model: str | None, backend: str, policy: str | None, batch_size: int
) -> tuple[Scorer, str]:
    """Scores texts through ``Threadguard.predict``, the path a user's code takes; and the
    model's version, for the report."""
    from classifier.api import Threadguard  # the class `from classifier import` re-exports, typed

    guard = Threadguard(model, backend=backend, policy=policy, batch_size=batch_size)

    def score(texts: Sequence[str]) -> list[Outcome]:
        return [
            Outcome(
                r.decision,
                dict(r.toxicity),
                tuple((s["start"], s["end"], s["label"]) for s in r.spans),
            )
            for r in guard.predict(list(texts))
        ]

    return score, f"{guard.predictor.model_version} ({backend})"


def run(
    model: str | None,
    backend: str = "auto",
    policy: str | None = None,
    cases_path: Path = CASES,
    batch_size: int = 32,
    scorer: Scorer | None = None,
) -> dict[str, Any]:
    """Score every case and summarise; ``scorer`` replaces the library (tests)."""
    cases = load_cases(cases_path)
    version = "given scorer"
    if scorer is None:
        scorer, version = library_scorer(model, backend, policy, batch_size)
    t0 = time.perf_counter()
    outcomes = scorer([c.text for c in cases])
    seconds = time.perf_counter() - t0
    logger.info("%d cases scored in %.1f s", len(cases), seconds)
    results = summarise(cases, outcomes)
    results.update(
        model=model or "classifier/default_model",
        version=version,
        policy=policy or "built-in (configs/moderation.yaml)",
        cases=str(cases_path),
        seconds=seconds,
    )
    return results


def _cell(found: Mapping[str, Any]) -> str:
    if found["rate"] is None:
        return "-"
    low, high = found["ci"]
    return f"{found['rate']:6.1%} [{low:5.1%}, {high:5.1%}]"


def print_table(results: Mapping[str, Any], failures: int = 0) -> None:
    """The per-kind table, the aggregate rows with their targets, and optionally the first
    ``failures`` failing cases of each kind (what to read before trusting a rate)."""
    print(f"model under test: {results['model']} {results['version']}")
    print(f"policy: {results['policy']}; cases: {results['cases']}")
    print("\npass rates [95 % Wilson interval]; label: which label must reach 0.5 "
          "('none': no label and no span)")  # fmt: skip
    print(f"{'kind':26s} {'n':>3s}  {'expected':8s}  {'decision pass':24s}  "
          f"{'label pass':24s}  {'with a span':>11s}  label")  # fmt: skip
    for kind, found in results["kinds"].items():
        print(
            f"{kind:26s} {found['n']:3d}  {found['expected']:8s}  {_cell(found['decision']):24s}  "
            f"{_cell(found['label_pass']):24s}  {found['with_span']['rate']:11.1%}  {found['label']}"
        )
    print("\naggregates (pooled over their cases)")
    for name, found in results["aggregates"].items():
        goal = ""
        if "target" in found:
            goal = f"  target {found['target']}: {'met' if found['met'] else 'MISSED'}"
        print(f"{name:50s} {found['k']:3d}/{found['n']:<3d} {_cell(found)}{goal}")
    if failures:
        print(f"\nfailing cases (first {failures} of each kind)")
        for kind in results["kinds"]:
            bad = [
                c
                for c in results["per_case"]
                if c["kind"] == kind and not (c["decision_pass"] and c["label_pass"])
            ]
            for c in bad[:failures]:
                top = max(c["toxicity"].items(), key=lambda kv: kv[1], default=("-", 0.0))
                spans = f", spans {c['spans']}" if c["spans"] else ""
                print(f"  {kind}: {c['decision']} ({top[0]} {top[1]:.2f}{spans}) {c['text']!r}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--backend", default="auto", help="backend of the model under test")
    parser.add_argument("--policy", default=None, help="policy file (default: the built-in one)")
    parser.add_argument("--cases", type=Path, default=CASES, help="JSONL file of cases")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--failures", type=int, default=0, help="print N failing cases a kind")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = run(args.model, args.backend, args.policy, args.cases, args.batch_size)
    print_table(results, args.failures)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
