"""The moderation policy (classifier.moderation.policy) and the model input of one comment (classifier.targets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from classifier.labels import STANCE_LABELS, TOXICITY_LABELS
from classifier.model.network import ThreadguardModel
from classifier.model.torch_predictor import Predictor
from classifier.moderation.policy import DEFAULT_POLICY, Decision, Policy, Reason, Rule
from classifier.schema import Article, Comment, Thread
from classifier.targets import comment_item, stance_target, thread_items, trim_words
from tests.conftest import STRICT_POLICY

ROOT = Path(__file__).resolve().parents[1]


def prediction(**scores: float) -> dict[str, Any]:
    toxicity = dict.fromkeys(TOXICITY_LABELS, 0.01)
    toxicity.update(scores)
    stance = dict.fromkeys(STANCE_LABELS, 0.1)
    stance["comment"] = 0.6
    return {"stance": {"label": "comment", "scores": stance}, "toxicity": toxicity}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- loading


def test_shipped_policy_file_is_the_builtin_default() -> None:
    shipped = Policy.load(ROOT / "configs" / "moderation.yaml")
    assert shipped.to_dict() == DEFAULT_POLICY
    assert Policy.load(None).to_dict() == DEFAULT_POLICY
    # the default policy must apply to the shipped default model: every rule's label is one it
    # scores (v0.4: its comment model gives the toxicity labels)
    meta = json.loads(
        (ROOT / "classifier" / "default_model" / "comment" / "threadguard_config.json").read_text()
    )
    shipped.check_labels(meta["model_config"]["toxicity_labels"])
    # and its feature rule names a constructiveness label the shipped model scores (v0.5)
    assert shipped.feature is not None
    assert shipped.feature.label in meta["model_config"]["constructive_labels"]


def test_calibrated_thresholds_file_loads_directly(tmp_path: Path) -> None:
    # The shape `threadguard evaluate --calibrate` writes, extra keys and comments included.
    path = write(
        tmp_path,
        "# written by threadguard evaluate --calibrate precision=0.9 on olid (model m)\n"
        "labels:\n"
        "  toxicity: {threshold: 0.612345, action: review, precision: 0.9, recall: 0.41, held_fraction: 0.07}\n"
        "  spam: {threshold: 0.93, action: reject, precision: 0.95, recall: null, held_fraction: 0.01}\n"
        "# threat: not calibrated: no positives\n",
    )
    policy = Policy.load(path)
    assert policy.rules == (
        Rule("toxicity", 0.612345, "review"),
        Rule("spam", 0.93, "reject"),
    )
    assert policy.source == str(path)
    assert Policy.load(write(tmp_path, "labels: {}\n")).rules == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("labels: {}\nthresholds: {}\n", "unknown policy key(s) ['thresholds']"),
        ("labels:\n  rudeness: {threshold: 0.5, action: review}\n", "'rudeness'"),
        ("labels:\n  toxicity: {threshold: 1.5, action: review}\n", "threshold 1.5"),
        ("labels:\n  toxicity: {threshold: -0.1, action: review}\n", "threshold -0.1"),
        ("labels:\n  toxicity: {threshold: high, action: review}\n", "threshold 'high'"),
        ("labels:\n  toxicity: {threshold: .nan, action: review}\n", "threshold nan"),
        ("labels:\n  toxicity: {threshold: true, action: review}\n", "threshold True"),
        ("labels:\n  toxicity: {threshold: 0.5, action: delete}\n", "unknown action 'delete'"),
        ("labels:\n  toxicity: {threshold: 0.5}\n", "has no 'action'"),
        ("labels:\n  toxicity: {action: review}\n", "has no 'threshold'"),
        ("labels:\n  toxicity: 0.5\n", "label 'toxicity' must map"),
        ("labels: [toxicity]\n", "'labels' must map"),
        ("toxicity: 0.5\n", "unknown policy key(s) ['toxicity']"),
        ("- labels\n", "must be a mapping"),
        ("{}\n", "no 'labels' key"),
        ("labels: {toxicity: {threshold: 0.5, action: review}\n", "not valid YAML"),
    ],
)
def test_bad_policies_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        Policy.load(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        Policy.load(tmp_path / "nope.yaml")


def test_round_trip_and_duplicates() -> None:
    policy = Policy.default()
    assert Policy.from_dict(policy.to_dict()) == Policy(policy.rules, "<dict>", policy.feature)
    with pytest.raises(ValueError, match="more than once"):
        Policy((Rule("spam", 0.5, "reject"), Rule("spam", 0.9, "review")))


# --------------------------------------------------------------------------- deciding


def test_decision_is_the_strictest_triggered_action() -> None:
    policy = STRICT_POLICY
    assert policy.decide(prediction()).decision == "approve"
    review = policy.decide(prediction(toxicity=0.95, insult=0.9))
    assert review.decision == "review"
    assert [r.label for r in review.reasons] == ["toxicity", "insult"]  # highest score first
    reject = policy.decide(prediction(toxicity=0.99, threat=0.75, spam=0.2))
    assert reject.decision == "reject"
    assert reject.reasons[0] == Reason(label="threat", score=0.75, threshold=0.7, action="reject")
    assert [r.action for r in reject.reasons] == ["reject", "review"]


def test_threshold_is_inclusive_and_unnamed_labels_never_decide() -> None:
    policy = Policy.from_dict({"labels": {"spam": {"threshold": 0.9, "action": "reject"}}})
    assert policy.decide(prediction(spam=0.9)).decision == "reject"
    assert policy.decide(prediction(spam=0.8999)).decision == "approve"
    assert policy.decide(prediction(toxicity=1.0, threat=1.0)).decision == "approve"


def test_decision_carries_reasons_every_score_and_the_stance() -> None:
    decision = Policy.default().decide(prediction(spam=0.99))
    out = decision.to_dict()
    assert json.loads(json.dumps(out)) == out
    assert out["decision"] == "reject"
    spam_rule = DEFAULT_POLICY["labels"]["spam"]
    assert out["reasons"] == [
        {"label": "spam", "score": 0.99, "threshold": spam_rule["threshold"], "action": "reject"}
    ]
    assert set(out["scores"]) == set(TOXICITY_LABELS)
    assert out["stance"]["label"] == "comment"
    assert set(out["stance"]["scores"]) == set(STANCE_LABELS)
    assert decision.has_reason("spam") and not decision.has_reason("threat")
    assert isinstance(decision, Decision)


def test_a_rule_the_model_cannot_apply_is_an_error() -> None:
    policy = STRICT_POLICY
    with pytest.raises(ValueError, match=r"rules for \['severe_toxicity', 'threat'"):
        policy.check_labels(["toxicity", "obscene", "insult", "identity_attack", "spam"])
    policy.check_labels(TOXICITY_LABELS)
    partial = prediction()
    del partial["toxicity"]["threat"]
    with pytest.raises(ValueError, match="no score for policy label 'threat'"):
        policy.decide(partial)


def test_decisions_on_real_predictions(tiny_model: ThreadguardModel) -> None:
    """The policy applied to a (tiny, random) model's own outputs, thresholds set from them."""
    items = [comment_item(t) for t in ("you idiot", "thanks for the report", "buy cheap now")]
    predictions = Predictor(tiny_model).predict(items)
    scores = [p["toxicity"]["toxicity"] for p in predictions]
    top = max(range(3), key=scores.__getitem__)
    cut = sorted(scores)[-1] - (sorted(scores)[-1] - sorted(scores)[-2]) / 2
    policy = Policy.from_dict({"labels": {"toxicity": {"threshold": cut, "action": "reject"}}})
    decisions = policy.decide_many(predictions)
    assert [d.decision for d in decisions] == [
        "reject" if i == top else "approve" for i in range(3)
    ]
    assert decisions[top].reasons[0].score == pytest.approx(scores[top])
    assert decisions[top].stance["label"] in tiny_model.stance_labels


# --------------------------------------------------------------------------- targets


ARTICLE_TEXT = "The council met on Tuesday.\nIt approved the budget.\n\nMore later."


def test_reply_targets_the_parent_with_the_title_as_context() -> None:
    item = comment_item("I disagree", "The budget is fine.", "Budget approved", ARTICLE_TEXT)
    assert item == {
        "text": "I disagree",
        "target": "The budget is fine.",
        "context": "Budget approved",
        "reply": True,
    }
    assert stance_target(item) == "parent"
    # under an article with no title a reply has no context, and still says it is a reply
    untitled = comment_item("I disagree", "The budget is fine.")
    assert untitled == {
        "text": "I disagree",
        "target": "The budget is fine.",
        "context": "",
        "reply": True,
    }


def test_top_level_comment_targets_title_and_first_paragraph() -> None:
    item = comment_item("Good news", None, "Budget approved", ARTICLE_TEXT)
    assert item == {
        "text": "Good news",
        "target": "Budget approved\nThe council met on Tuesday.",
        "context": "",
        "reply": False,
    }
    assert stance_target(item) == "article"
    blank_parent = comment_item("Good news", "   ", "Budget approved", ARTICLE_TEXT)
    assert blank_parent == item
    alone = comment_item("Good news")
    assert alone == {"text": "Good news", "target": "", "context": "", "reply": False}
    assert stance_target(alone) == "none"


def test_targets_are_trimmed_to_a_few_hundred_words() -> None:
    long_paragraph = " ".join(f"w{i}" for i in range(1000))
    item = comment_item("ok", None, "Title", long_paragraph)
    assert len(item["target"].split()) == 300
    assert item["target"].startswith("Title\nw0 w1")
    assert trim_words("a  b\nc d", 3) == "a  b\nc"
    assert trim_words("a b", 5) == "a b"
    assert trim_words(None) == "" and trim_words("a", 0) == ""


def test_thread_items_resolve_parents() -> None:
    thread = Thread(
        id="t",
        source="test",
        article=Article(id="t", title="Budget approved", body=ARTICLE_TEXT),
        comments=[
            Comment(id="1", text="Great"),
            Comment(id="2", text="No it is not", parent_id="1"),
        ],
    )
    first, second = thread_items(thread)
    assert first["target"].startswith("Budget approved\n") and first["context"] == ""
    assert second == {
        "text": "No it is not",
        "target": "Great",
        "context": "Budget approved",
        "reply": True,
    }
    assert first["reply"] is False


def test_feature_decision_for_constructive_comments_nothing_holds_back() -> None:
    policy = Policy.default()
    assert policy.feature is not None and policy.feature.label == "constructive"
    labels = ("toxicity", "insult", "obscene", "identity_attack", "threat", "spam")
    calm = {"toxicity": dict.fromkeys(labels, 0.1), "stance": {}}
    high = {**calm, "constructive": {"constructive": 0.93, "evidence": 0.7}}
    decided = policy.decide(high)
    assert decided.decision == "feature"
    assert [r.model_dump() for r in decided.reasons] == [
        {"label": "constructive", "score": 0.93, "threshold": 0.8, "action": "feature"}
    ]
    assert policy.decide({**calm, "constructive": {"constructive": 0.5}}).decision == "approve"
    assert policy.decide(calm).decision == "approve"  # a model without the head: never featured
    # sharp and constructive: the toxicity rule wins, a moderator sees it
    sharp = {**high, "toxicity": {**calm["toxicity"], "toxicity": 0.7}}
    assert policy.decide(sharp).decision == "review"
    with pytest.raises(ValueError, match="unknown feature label 'kindness'"):
        Policy.from_dict({"labels": {}, "feature": {"label": "kindness", "threshold": 0.5}})
    with pytest.raises(ValueError, match="feature threshold 2 "):
        Policy.from_dict({"labels": {}, "feature": {"threshold": 2}})
    with pytest.raises(ValueError, match=r"unknown feature key\(s\) \['treshold'\]"):
        Policy.from_dict({"labels": {}, "feature": {"treshold": 0.5}})
