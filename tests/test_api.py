"""The Python API (classifier.Threadguard): its examples run, and it refuses bad input."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import classifier
import classifier.api
from classifier.io.readers import read_file
from classifier.labels import CONSTRUCTIVE_LABELS
from classifier.schema import CommentResult, Thread

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


@pytest.fixture(scope="module")
def tg() -> classifier.Threadguard:
    return classifier.Threadguard()


@pytest.mark.slow
def test_the_documented_examples_run() -> None:
    failures, tried = doctest.testmod(classifier.api, raise_on_error=False)
    assert tried >= 6 and failures == 0


@pytest.mark.slow
def test_results_are_keyed_by_label_and_match_the_predictor(tg: classifier.Threadguard) -> None:
    texts = ["You are a pathetic idiot", "Thanks for the clear summary."]
    results = tg.predict(texts, target="Council cuts the bus budget")
    assert [r.text for r in results] == texts
    rows = tg.predictor.predict(
        [{"text": t, "target": "Council cuts the bus budget"} for t in texts]
    )
    for result, row in zip(results, rows, strict=True):
        assert result.toxicity == row["toxicity"]
        assert result.stance == row["stance"]["label"]
        assert set(result.toxicity) == set(tg.toxicity_labels)
    assert results[0].decision == "review" and results[0].reasons
    assert results[1].decision == "approve" and not results[1].reasons


@pytest.mark.slow
def test_bad_input_is_refused_with_the_reason(tg: classifier.Threadguard) -> None:
    with pytest.raises(ValueError, match="got 1 targets for 2 texts"):
        tg.predict(["a", "b"], target=["only one"])
    with pytest.raises(ValueError, match="text 1: texts and targets must be strings"):
        tg.predict(["a", 3])  # type: ignore[list-item]


@pytest.mark.slow
def test_threads_are_scored_as_the_cli_scores_them(tg: classifier.Threadguard) -> None:
    threads = [
        t for p in sorted(SEEDS.glob("*.txt")) for t in read_file(p) if isinstance(t, Thread)
    ]
    rows = list(tg.score_threads(threads))
    assert len(rows) == sum(len(t.comments) for t in threads) > 0
    for row in rows:
        assert isinstance(row, CommentResult)  # the type the CLI writes (CommentResult.row)
        assert row.decision in ("feature", "approve", "review", "reject")
        assert set(row.constructive or ()) == set(CONSTRUCTIVE_LABELS)  # every comment scored
        for span in row.spans or ():
            assert 0 <= span.start < span.end <= len(row.text)
    # the reasoned replies of the seeds are featured and none is rejected; since v0.6.1 (which
    # learned implicit derogation) one comment is held for review, at the threshold: seed
    # comment 2's "Muslim fighting muslim for power is nothing new. It goes back to the very
    # start." (toxicity 0.52; MODEL_CARD.md, Limitations), with no span on the identity term
    decisions = [r.decision for r in rows]
    assert "feature" in decisions and "reject" not in decisions
    held = [r for r in rows if r.decision == "review"]
    assert [r.text.split("\n")[-1][:34] for r in held] in (
        [],
        ["Muslim fighting muslim for power i"],
    )
    assert all(not r.spans for r in held)


REASONED = (
    "I disagree with the premise. The city's own 2019 audit found that bus ridership fell 12% "
    "after the last fare increase, and the council's budget document (page 14) shows the savings "
    "were smaller than the lost fare revenue. A better approach would be to phase in the cuts "
    "and publish ridership data each quarter so residents can see the effect."
)


@pytest.mark.slow
def test_shipped_model_explains_and_ranks_as_issues_29_and_30_ask(
    tg: classifier.Threadguard,
) -> None:
    insult, reasoned, calm = tg.predict(
        ["You are a pathetic idiot and everyone here knows it", REASONED, "Thanks for the summary."]
    )
    flagged = [(insult.text[s["start"] : s["end"]], s["label"]) for s in insult.spans]
    assert any("idiot" in words and label == "insult" for words, label in flagged), flagged
    assert calm.spans == () and reasoned.spans == ()
    assert insult.constructive["constructive"] < 0.2 < 0.8 < reasoned.constructive["constructive"]
    assert reasoned.decision == "feature" and insult.decision == "review"
