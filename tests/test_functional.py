"""The functional suite (benchmarks/functional.py): its case file, the counting behind each
pass rate on a fake predictor, and the script on a tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.scripts import load_benchmark

ROOT = Path(__file__).resolve().parents[1]


functional = load_benchmark("functional")


# --------------------------------------------------------------------------- the cases


def test_every_kind_has_enough_distinct_cases_with_one_expectation() -> None:
    cases = functional.load_cases()
    counts = Counter(c.kind for c in cases)
    assert set(counts) == set(functional.KINDS)
    assert min(counts.values()) >= functional.MIN_CASES, counts
    # no duplicates, not even by case or spacing: a repeated case would count twice
    normalised = Counter(" ".join(c.text.lower().split()) for c in cases)
    assert [t for t, n in normalised.items() if n > 1] == []
    # one expectation per kind: the per-kind row prints the first case's
    for kind in functional.KINDS:
        mine = {(c.expected, c.labels) for c in cases if c.kind == kind}
        assert len(mine) == 1, (kind, mine)
    expected = {c.kind: c.expected for c in cases}
    assert {k for k, e in expected.items() if e == "held"} == {
        "threat", "identity_hate_explicit", "implicit_derogation", "negated_positive",
        "obfuscated_insult", "insult", "profanity", "spam",
    }  # fmt: skip
    labels = {c.kind: c.labels for c in cases}
    assert labels["threat"] == ("threat",) and labels["spam"] == ("spam",)
    assert labels["profanity"] == ("obscene",)
    assert all(labels[k] == () for k, e in expected.items() if e == "approved")
    # identity mentions name the term their spans are checked on
    assert all(c.identity for c in cases if c.kind in functional.IDENTITY_KINDS)


def test_load_cases_names_the_line_of_a_broken_case(tmp_path: Path) -> None:
    good = {"kind": "benign", "text": "Nice park.", "expected": "approved", "label": "none"}
    rows: list[dict[str, str]] = [
        {**good, "kind": "rant"},
        {**good, "expected": "maybe"},
        {**good, "text": "  "},
        {**good, "kind": "identity_neutral", "identity": "Sikh"},
        {"kind": "benign", "text": "no expectation"},
    ]
    problems = [
        "unknown kind",
        "expected must be",
        "empty text",
        "identity .Sikh. is not",
        "not a case",
    ]
    for row, problem in zip(rows, problems, strict=True):
        path = tmp_path / "cases.jsonl"
        path.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
        with pytest.raises(ValueError, match=rf"cases.jsonl:2: {problem}"):
            functional.load_cases(path)
    path.write_text(json.dumps({**good, "label": "insult|toxicity"}) + "\n\n", encoding="utf-8")
    (case,) = functional.load_cases(path)
    assert case.labels == ("insult", "toxicity") and case.identity is None


# --------------------------------------------------------------------------- the counting


def test_wilson_interval_matches_known_values() -> None:
    assert functional.wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = functional.wilson(0, 25)
    assert low == 0.0 and high == pytest.approx(0.1332, abs=1e-4)
    low, high = functional.wilson(25, 25)
    assert low == pytest.approx(0.8668, abs=1e-4) and high == 1.0
    assert functional.wilson(0, 0) == (0.0, 1.0)


def _case(kind: str, text: str, identity: str | None = None) -> Any:
    held = kind in ("threat", "identity_hate_explicit", "insult")
    labels = {"threat": ("threat",), "identity_hate_explicit": ("identity_attack", "toxicity"),
              "insult": ("insult",)}.get(kind, ())  # fmt: skip
    return functional.Case(kind, text, "held" if held else "approved", labels, identity)


def _outcome(decision: str, spans: Sequence[tuple[int, int, str]] = (), **scores: float) -> Any:
    base = {"toxicity": 0.1, "threat": 0.1, "insult": 0.1, "identity_attack": 0.1}
    return functional.Outcome(decision, {**base, **scores}, tuple(spans))


def test_pass_rates_and_aggregates_on_a_fake_predictor() -> None:
    cases = [
        _case("threat", "I will hurt you."),  # held, threat 0.9: both pass
        _case("threat", "You are dead."),  # held by toxicity, threat 0.4: label fails
        _case("threat", "Watch out."),  # approved: both fail
        _case("threat", "I'll get you."),  # reject counts as held, threat exactly 0.5
        _case("identity_neutral", "Sikh farmers met today.", "Sikh"),  # span on the term
        _case("identity_neutral", "The Sikh and the Jain.", "Jain"),  # span elsewhere only
        _case("identity_positive", "I love Jain food.", "Jain"),  # held, no span
        _case("identity_positive", "Jain, Jain, Jain!", "Jain"),  # clean pass
        _case("identity_hate_explicit", "Group X are vermin."),  # held on toxicity only
        _case("counter_speech_quote", "'X are vermin' is vile."),  # held: fails
        _case("counter_speech_reference", "Stop the abuse."),  # approved but a span: label fails
        _case("insult", "You idiot."),  # feature is approved: decision fails
    ]
    outcomes = [
        _outcome("review", threat=0.9),
        _outcome("review", toxicity=0.8, threat=0.4),
        _outcome("approve"),
        _outcome("reject", threat=0.5),
        _outcome("approve", [(0, 4, "identity_attack")]),
        _outcome("approve", [(4, 8, "toxicity")]),
        _outcome("review", identity_attack=0.6),
        _outcome("feature"),
        _outcome("review", [(10, 16, "toxicity")], toxicity=0.7),
        _outcome("review", [(1, 13, "identity_attack")], identity_attack=0.6),
        _outcome("approve", [(9, 14, "toxicity")]),
        _outcome("feature", insult=0.7),
    ]
    found = functional.summarise(cases, outcomes)
    kinds = found["kinds"]
    assert list(kinds) == [
        "threat", "identity_neutral", "identity_positive", "identity_hate_explicit",
        "counter_speech_quote", "counter_speech_reference", "insult",
    ]  # fmt: skip
    threat = kinds["threat"]
    assert (threat["decision"]["k"], threat["decision"]["n"]) == (3, 4)
    assert (threat["label_pass"]["k"], threat["label_pass"]["n"]) == (2, 4)
    assert threat["decision"]["ci"] == list(functional.wilson(3, 4))
    assert threat["expected"] == "held" and threat["label"] == "threat"
    # identity_neutral: both approved, but each carries a span: no label pass
    assert kinds["identity_neutral"]["decision"]["rate"] == 1.0
    assert kinds["identity_neutral"]["label_pass"]["rate"] == 0.0
    assert kinds["identity_neutral"]["label"] == "none"
    assert kinds["identity_neutral"]["with_span"]["rate"] == 1.0
    assert kinds["threat"]["with_span"]["rate"] == 0.0
    # identity_positive: one held (identity_attack 0.6), one clean
    assert kinds["identity_positive"]["decision"]["k"] == 1
    assert kinds["identity_positive"]["label_pass"]["k"] == 1
    assert kinds["identity_hate_explicit"]["label_pass"]["rate"] == 1.0  # toxicity 0.7 suffices
    assert kinds["counter_speech_reference"]["decision"]["rate"] == 1.0
    assert kinds["counter_speech_reference"]["label_pass"]["rate"] == 0.0
    assert kinds["insult"]["decision"]["rate"] == 0.0 and kinds["insult"]["label_pass"]["rate"] == 1.0  # fmt: skip

    agg = found["aggregates"]
    assert agg["threats held"]["k"] == 3 and agg["threats held"]["met"] is False
    assert agg["threat >= 0.5 among threats"]["rate"] == 0.5
    assert agg["identity mentions held"]["k"] == 1 and agg["identity mentions held"]["n"] == 4
    # only the span over "Sikh" touches its term; "Sikh" in case 2 is not that case's term
    assert agg["identity mentions: span on the term"]["k"] == 1
    assert agg["identity mentions: identity_attack span"]["k"] == 1
    assert agg["identity mentions: any span"]["k"] == 2
    assert agg["counter-speech approved"]["k"] == 1 and agg["counter-speech approved"]["met"] is False  # fmt: skip
    assert agg["hateful content held"]["rate"] == 1.0 and agg["hateful content held"]["met"]
    # neither hateful nor abusive: 4 identity mentions (3 approved) + 2 counter-speech (1)
    neither = agg["neither hateful nor abusive: approved"]
    assert (neither["k"], neither["n"]) == (4, 6) and neither["met"] is False
    assert "benign: approved" not in agg  # no benign case: no row
    assert [c["decision_pass"] for c in found["per_case"]][:4] == [True, True, False, True]
    assert found["per_case"][4]["spans"] == ["Sikh (identity_attack)"]


def test_a_span_counts_on_the_identity_term_only_where_it_overlaps_it() -> None:
    assert functional.identity_ranges("Jain food, Jain art", "Jain") == [(0, 4), (11, 15)]
    case = _case("identity_neutral", "Jain food, Jain art", "Jain")
    next_to_it = functional.check(case, _outcome("approve", [(4, 9, "identity_attack")]))
    assert next_to_it.any_span and not next_to_it.identity_span  # " food" only touches "Jain"
    second = functional.check(case, _outcome("approve", [(14, 19, "identity_attack")]))
    assert second.identity_span and second.identity_attack_span  # the term's 2nd occurrence
    other_label = functional.check(case, _outcome("approve", [(0, 4, "insult")]))
    assert other_label.identity_span and not other_label.identity_attack_span


def test_summarise_refuses_outcomes_that_do_not_match() -> None:
    case = _case("benign", "Fine.")
    with pytest.raises(ValueError, match="1 outcomes for 2 cases"):
        functional.summarise([case, case], [_outcome("approve")])
    with pytest.raises(ValueError, match="unknown decision 'hold'"):
        functional.summarise([case], [_outcome("hold")])


def test_run_scores_the_case_file_with_a_given_scorer(tmp_path: Path) -> None:
    rows = [
        {"kind": "spam", "text": "Buy now at cheap.biz", "expected": "held", "label": "spam"},
        {"kind": "benign", "text": "Good article.", "expected": "approved", "label": "none"},
    ]
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    seen: list[str] = []

    def scorer(texts: Sequence[str]) -> list[Any]:
        seen.extend(texts)
        return [_outcome("reject", spam=0.95), _outcome("approve", spam=0.6)]

    found = functional.run(None, cases_path=path, scorer=scorer)
    assert seen == [r["text"] for r in rows]
    assert found["kinds"]["spam"]["label_pass"]["rate"] == 1.0
    # approved, but spam 0.6 reaches 0.5: a "none" case fails its label check
    assert found["kinds"]["benign"]["decision"]["rate"] == 1.0
    assert found["kinds"]["benign"]["label_pass"]["rate"] == 0.0


# --------------------------------------------------------------------------- the script


def test_script_on_a_tiny_model(span_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from classifier.api import Threadguard

    out = tmp_path / "functional.json"
    functional.main(["--model", str(span_folder), "--backend", "torch", "--json", str(out), "--failures", "1"])  # fmt: skip
    printed = capsys.readouterr().out
    found = json.loads(out.read_text(encoding="utf-8"))
    cases = functional.load_cases()
    assert {k: v["n"] for k, v in found["kinds"].items()} == Counter(c.kind for c in cases)
    # the figures are those of the library's own decisions for the same texts
    results = Threadguard(span_folder, backend="torch").predict([c.text for c in cases])
    assert [r["decision"] for r in found["per_case"]] == [r.decision for r in results]
    threats = [r for c, r in zip(cases, results, strict=True) if c.kind == "threat"]
    held = sum(r.decision in ("review", "reject") for r in threats)
    assert found["aggregates"]["threats held"]["k"] == held
    above = sum(r.toxicity["threat"] >= 0.5 for r in threats)
    assert found["kinds"]["threat"]["label_pass"]["k"] == above
    for kind in functional.KINDS:
        assert kind in printed
    assert "threats held" in printed and "target >= 90%" in printed


@pytest.mark.parametrize("command", [["benchmarks/functional.py"], ["-m", "benchmarks.functional"]])
def test_both_ways_of_running_the_script_start(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, *command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "--backend" in done.stdout and "--model" in done.stdout
