"""The one result type (issue 39): the published row schema is the model's, real rows
validate against it, and a result survives a round trip through JSON unchanged."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from classifier.io.writers import jsonl_line
from classifier.labels import CONSTRUCTIVE_LABELS, STANCE_LABELS, TOXICITY_LABELS
from classifier.schema import CommentResult, ModelInfo, Reason, Scored, Span
from classifier.scoring import ScoreRun
from tests.conftest import STRICT_POLICY

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference.md"


def published(pattern: str) -> str:
    """The first code block of docs/reference.md after ``pattern``."""
    text = REFERENCE.read_text(encoding="utf-8")
    found = re.search(pattern + r".*?```json\n(.*?)\n```", text, flags=re.DOTALL)
    assert found, f"docs/reference.md has no JSON block after {pattern!r}"
    return found.group(1)


def test_the_published_row_schema_is_the_models() -> None:
    assert json.loads(published("<!-- row-schema -->")) == CommentResult.model_json_schema()


def test_the_documented_row_is_a_result_written_back_byte_for_byte() -> None:
    """The example row (written by the shipped model) validates, and the model writes it
    back as it was: key order, nulls and float digits."""
    line = published("one row per comment")
    row = CommentResult.model_validate_json(line)
    assert row.constructive is not None and row.spans == [] and row.decision is None
    assert jsonl_line(row.row()) == jsonl_line(json.loads(line))


class HeadsPredictor:
    """The scoring pipeline's model stand-in, with the constructiveness and span heads."""

    toxicity_labels = TOXICITY_LABELS
    stance_labels = STANCE_LABELS
    model_version = "fake-000000000000"
    backend = "onnx"
    span_holds = None

    def set_spans(self, on: bool) -> None:
        pass

    def predict(self, items: list[Any]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            toxic = 0.9 if "ISIS" in item["text"] else 0.1 / 3
            stance = dict.fromkeys(STANCE_LABELS, 0.2)
            out.append(
                {
                    "stance": {"label": STANCE_LABELS[0], "scores": stance},
                    "toxicity": dict.fromkeys(TOXICITY_LABELS, toxic),
                    "constructive": dict.fromkeys(CONSTRUCTIVE_LABELS, 1e-05),
                    "spans": [{"start": 0, "end": 2, "label": "insult", "score": toxic}]
                    if toxic > 0.5
                    else [],
                }
            )
        return out


@pytest.mark.parametrize("policy", [None, STRICT_POLICY])
def test_every_written_row_validates_against_the_model(tmp_path: Path, policy: Any) -> None:
    out = tmp_path / "rows.jsonl"
    info = ModelInfo(name="fake", version="000000000000", backend="onnx")
    run = ScoreRun(HeadsPredictor(), info, policy)  # type: ignore[arg-type]
    run.run([str(ROOT / "seeds")], out, "jsonl")
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(lines) == 5
    for line in lines:
        row = CommentResult.model_validate_json(line)
        assert jsonl_line(row.row()) == line  # and written back unchanged
        assert (row.decision is None) == (policy is None)
    held = [CommentResult.model_validate_json(line) for line in lines if "ISIS" in line]
    assert held and all(r.spans for r in held)
    if policy is not None:
        assert all(r.decision == "reject" and r.reasons for r in held)


def test_a_result_survives_a_round_trip_through_json() -> None:
    prediction = {
        "stance": {"label": "deny", "scores": {"support": 0.1, "deny": 0.9}},
        "toxicity": {"toxicity": 0.7, "insult": 0.65},
        "spans": [{"start": 4, "end": 9, "label": "insult", "score": 0.66}],
    }
    scored = Scored.of("You idiot", prediction, "parent")
    assert scored.constructive is None and scored.spans == [
        Span(start=4, end=9, label="insult", score=0.66)
    ]
    assert Scored.model_validate_json(scored.model_dump_json()) == scored
    row = CommentResult(
        thread_id="t",
        comment_id="2",
        parent_id="1",
        author=None,
        **scored.fields(),
        model=ModelInfo(name="m", version="v", backend="onnx"),
        decision="review",
        reasons=[Reason(label="toxicity", score=0.7, threshold=0.5, action="review")],
    )
    assert CommentResult.model_validate_json(row.model_dump_json()) == row
    assert CommentResult.model_validate(json.loads(jsonl_line(row.row()))) == row
    # absent, not null: a model without the constructiveness head writes no such key
    assert "constructive" not in row.row() and row.row()["author"] is None
    assert list(row.row()) == [
        "thread_id", "comment_id", "parent_id", "author", "text", "stance", "toxicity",
        "spans", "model", "decision", "reasons",
    ]  # fmt: skip


def test_a_result_refuses_fields_it_does_not_name() -> None:
    with pytest.raises(ValueError, match="colour"):
        Scored.of(
            "hi", {"stance": {"label": "x", "scores": {}}, "toxicity": {}, "colour": 1}, "none"
        )
    with pytest.raises(ValueError, match="target"):
        Scored.of("hi", {"stance": {"label": "x", "scores": {}}, "toxicity": {}}, "sideways")


def test_an_api_span_still_reads_as_a_mapping() -> None:
    span = Span(start=1, end=3, label="insult", score=0.5)
    assert "abcd"[span["start"] : span["end"]] == "bc" and span["label"] == "insult"
