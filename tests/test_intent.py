"""Model v0.6's intent work: contrast data, threat corpora, warm start, spans that explain."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from classifier.model.config import LoraSettings, ModelConfig
from classifier.model.network import ThreadguardModel
from classifier.model.spans import Span, explaining_spans, only_identity_terms
from classifier.moderation.policy import Policy
from training.corpora import read_corpus
from training.corpora._common import Collector
from training.corpora.contrast import generate, load_contrast, obfuscations, templates
from training.corpora.threats import gab_labels, load_gab_hate, load_news_threats

# ----------------------------------------------------------------------------- contrast


def _contrast_rows() -> list[dict]:
    out = Collector("contrast")
    load_contrast(Path("."), out)
    return [row for rows in out.splits.values() for row in rows]


def test_contrast_is_seeded_and_split_by_template() -> None:
    first = [(t.text, s) for t, s in generate()]
    assert first == [(t.text, s) for t, s in generate()]
    assert first != [(t.text, s) for t, s in generate(seed=1)]
    rows = _contrast_rows()
    by_template: dict[str, set[str]] = {}
    for template, sentence in generate():
        by_template.setdefault(template.text, set()).add(sentence)
    split_of = {row["text"]: row["split"] for row in rows}
    for template in templates():
        splits = {split_of[s] for s in by_template[template.text] if s in split_of}
        assert splits == {template.split}, template.text
    kinds = {row["group"] for row in rows}
    assert {"identity_neutral", "counter_speech", "threat", "obfuscated_insult"} <= kinds
    for kind in kinds:  # every kind has dev sentences from templates training never sees
        assert {r["split"] for r in rows if r["group"] == kind} == {"train", "dev"}, kind


def test_contrast_labels_follow_intent_not_words() -> None:
    rows = {row["text"]: row for row in _contrast_rows()}
    love = next(r for t, r in rows.items() if t.startswith("I love "))
    assert love["toxicity"] == 0.0 and love["identity_attack"] == 0.0
    assert love["spans"] == "[]"  # annotated: no word of it is a toxic span
    quote = next(r for r in rows.values() if r["group"] == "counter_speech")
    assert quote["toxicity"] == 0.0 and quote["spans"] == "[]"
    threat = next(r for r in rows.values() if r["group"] == "threat")
    assert threat["threat"] == 1.0 and threat["severe_toxicity"] == 1.0
    assert threat["spans"] == ""  # toxic rows leave spans unknown
    hate = next(r for r in rows.values() if r["group"] == "identity_hate")
    assert hate["identity_attack"] == 1.0 and hate["toxicity"] == 1.0
    # spam: said only of the spam kind (and of its twins, by the recipe's assume)
    assert {r["spam"] for r in rows.values() if r["group"] == "spam"} == {1.0}
    assert all(r["spam"] == -1.0 for r in rows.values() if r["group"] != "spam")


def test_contrast_twins_share_their_source_split_and_differ_in_intent() -> None:
    """v0.6.1's minimal pairs: a twin keeps its source's words and split, not its labels."""
    sources = {t.text: t for t in templates() if not t.pair}
    twins = [t for t in templates() if t.pair]
    assert {t.kind for t in twins} >= {"veiled_twin", "positive_twin", "derogation_twin"}
    for twin in twins:
        source = sources[twin.pair]
        assert twin.split == source.split, twin.text
        assert twin.benign and not source.benign, twin.text
    rows = _contrast_rows()
    welcome = [r for r in rows if r["group"] == "positive_twin" and "are welcome here" in r["text"]]
    assert welcome and all(r["toxicity"] == 0.0 and r["spans"] == "[]" for r in welcome)
    veiled = {r["text"]: r for r in rows if r["group"] in ("veiled_threat", "veiled_twin")}
    assert veiled["I know where you live."]["threat"] == 1.0
    assert veiled["I know where you live: two streets from the new library."]["threat"] == 0.0
    for kind in ("group_harm", "harm_call", "conditional_threat"):
        assert {r["threat"] for r in rows if r["group"] == kind} == {1.0}, kind
    assert {r["threat"] for r in rows if r["group"] == "reported_threat"} == {0.0}
    assert {r["identity_attack"] for r in rows if r["group"] == "implicit_derogation"} == {1.0}


def test_obfuscations_change_one_word_four_ways() -> None:
    import random

    variants = obfuscations("you are an idiot", random.Random(0))
    assert len(variants) == 4 and len(set(variants)) == 4
    assert "i d i o t" in variants[1]
    for v in variants:
        assert v.startswith("you are an ") and v != "you are an idiot"


def test_contrast_is_registered_as_a_corpus(tmp_path: Path) -> None:
    load = read_corpus("contrast", root=tmp_path)
    assert load.splits["train"] and load.splits["dev"] and "test" not in load.splits


# ----------------------------------------------------------------------------- threats


def test_news_threats(tmp_path: Path) -> None:
    (tmp_path / "threat.csv").write_text(
        'text,label\n"I will end you, watch.",5\nodd row,0\n', encoding="utf-8"
    )
    (tmp_path / "safe.csv").write_text("text,label\nNice piece.,0\n", encoding="utf-8")
    out = Collector("news_threats")
    load_news_threats(tmp_path, out)
    rows = [r for rows in out.splits.values() for r in rows]
    assert len(rows) == 2 and sum(out.skipped.values()) == 1  # label 0 in threat.csv
    threat = next(r for r in rows if r["text"].startswith("I will"))
    assert threat["threat"] == 1.0 and threat["toxicity"] == -1.0
    safe = next(r for r in rows if r["text"] == "Nice piece.")
    assert safe["threat"] == 0.0 and safe["toxicity"] == 0.0 and safe["severe_toxicity"] == 0.0


def test_gab_hate(tmp_path: Path) -> None:
    header = "text\thd\tcv\tvo\n"
    (tmp_path / "ghc_train.tsv").write_text(
        header + "kill them all\t1\t1\t0\nnice day\t0\t0\t0\nbad\t2\t0\t0\n", encoding="utf-8"
    )
    (tmp_path / "ghc_test.tsv").write_text(header + "you suck\t0\t0\t1\n", encoding="utf-8")
    out = Collector("gab_hate")
    load_gab_hate(tmp_path, out)
    assert sum(out.skipped.values()) == 1  # hd = 2 is not a vote
    assert [r["text"] for r in out.splits["test"]] == ["you suck"]
    assert gab_labels(1, 1, 0) == {
        "toxicity": 1,
        "threat": 1,
        "identity_attack": 1,
        "severe_toxicity": 1.0,
    }
    assert gab_labels(0, 0, 0)["severe_toxicity"] == 0.0
    assert "severe_toxicity" not in gab_labels(1, 0, 0)  # hate alone says nothing of severity


# ----------------------------------------------------------------------------- warm start


def test_warm_start_copies_the_adapter_and_heads_by_label(
    tiny_encoder_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("peft")
    from training.lora import apply_lora
    from training.warm_start import warm_start

    lora = LoraSettings(r=4, alpha=8, dropout=0.0, extra_trainable=("LayerNorm",))
    old_labels = ("toxicity", "insult", "threat")
    torch.manual_seed(0)
    old = ThreadguardModel.from_encoder(
        ModelConfig(
            encoder=str(tiny_encoder_dir), max_length=32, toxicity_labels=old_labels, lora=lora
        )
    )
    apply_lora(old)
    with torch.no_grad():
        for name, p in old.named_parameters():
            if ".lora_B" in name or "LayerNorm" in name or "head" in name:
                p.add_(torch.randn_like(p) * 0.1)
    old.save_pretrained(tmp_path / "old", mode="delta")

    torch.manual_seed(1)
    new = ThreadguardModel.from_encoder(
        ModelConfig(
            encoder=str(tiny_encoder_dir),
            max_length=32,
            toxicity_labels=("toxicity", "severe_toxicity", "threat", "insult"),
            lora=lora,
        )
    )
    apply_lora(new)
    fresh_row = new.toxicity_head.weight[1].detach().clone()  # severe_toxicity's row
    warm_start(new, tmp_path / "old")
    w_old, w_new = old.toxicity_head.weight, new.toxicity_head.weight
    old_rows = {n: i for i, n in enumerate(old.config.toxicity_labels)}
    new_rows = {n: i for i, n in enumerate(new.config.toxicity_labels)}
    assert old_rows["insult"] != new_rows["insult"]  # the label moved: copied by name
    for label in ("toxicity", "insult", "threat"):
        assert torch.equal(w_new[new_rows[label]], w_old[old_rows[label]]), label
    assert torch.equal(w_new[new_rows["severe_toxicity"]], fresh_row)  # new: untouched
    # the encoders agree: same LoRA factors and LayerNorms on the same base
    state_old = {
        k: v for k, v in old.encoder.state_dict().items() if "lora_" in k or "LayerNorm" in k
    }
    state_new = {
        k: v for k, v in new.encoder.state_dict().items() if "lora_" in k or "LayerNorm" in k
    }
    assert state_old.keys() == state_new.keys()
    for key in state_old:
        assert torch.equal(state_old[key], state_new[key]), key


def test_warm_start_refuses_a_full_save(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("peft")
    from training.lora import apply_lora
    from training.warm_start import warm_start

    config = ModelConfig(encoder=str(tiny_encoder_dir), max_length=32, lora=LoraSettings(r=4))
    ThreadguardModel.from_encoder(config).save_pretrained(tmp_path / "full", mode="full")
    model = apply_lora(ThreadguardModel.from_encoder(config))
    with pytest.raises(ValueError, match="only a delta-mode save"):
        warm_start(model, tmp_path / "full")


# ----------------------------------------------------------------------------- spans


def _span(text: str, words: str, label: str) -> Span:
    start = text.index(words)
    return {"start": start, "end": start + len(words), "label": label, "score": 0.9}


HOLDS = {"toxicity": 0.5, "insult": 0.5, "identity_attack": 0.5, "threat": 0.5, "obscene": 0.5}


def test_an_approved_comment_carries_no_spans() -> None:
    text = "I love Muslims."
    spans = [_span(text, "Muslims", "identity_attack")]
    scores = {"toxicity": 0.39, "identity_attack": 0.08, "insult": 0.04}
    assert explaining_spans(spans, text, scores, HOLDS) == []


def test_an_identity_term_alone_is_never_a_span() -> None:
    text = "Muslims are scum and the Jewish community is worse"
    spans = [
        _span(text, "Muslims", "identity_attack"),
        _span(text, "scum", "insult"),
        _span(text, "the Jewish community", "identity_attack"),
    ]
    scores = {"toxicity": 0.93, "identity_attack": 0.7, "insult": 0.6}
    kept = explaining_spans(spans, text, scores, HOLDS)
    assert [text[s["start"] : s["end"]] for s in kept] == ["scum"]
    assert only_identity_terms("Muslims") and only_identity_terms("the Jewish community")
    assert not only_identity_terms("Muslims are scum")


def test_a_span_explains_only_a_label_that_holds() -> None:
    text = "You idiot, I will hurt you"
    spans = [_span(text, "idiot", "insult"), _span(text, "hurt you", "threat")]
    # insult holds, threat does not, toxicity does not: the threat span goes
    kept = explaining_spans(spans, text, {"toxicity": 0.4, "insult": 0.8, "threat": 0.3}, HOLDS)
    assert [s["label"] for s in kept] == ["insult"]
    # toxicity holds: every typed span explains it
    kept = explaining_spans(spans, text, {"toxicity": 0.9, "insult": 0.2, "threat": 0.3}, HOLDS)
    assert [s["label"] for s in kept] == ["insult", "threat"]
    # a stricter policy holds nothing: no spans
    strict = dict.fromkeys(HOLDS, 0.95)
    assert explaining_spans(spans, text, {"toxicity": 0.9, "insult": 0.8}, strict) == []


def test_predictions_follow_the_policy(span_folder: Path) -> None:
    from classifier import Threadguard

    texts = ["you are a stupid idiot", "a nice day at the lake", "what a rotten thing"]
    loose = Threadguard(span_folder, backend="torch")
    loose.predictor = loose.predictor.with_options(span_holds=dict.fromkeys(HOLDS, 0.0))
    with_all = loose.predict(texts)  # every label holds
    assert any(r.spans for r in with_all)  # the fixture's span head marks some words
    policy = span_folder.parent / "never.yaml"
    policy.write_text(
        "labels:\n" + "".join(f"  {k}: {{threshold: 1.0, action: review}}\n" for k in HOLDS),
        encoding="utf-8",
    )
    strict = Threadguard(span_folder, backend="torch", policy=policy)
    for result in strict.predict(texts):
        if result.decision == "approve":
            assert not result.spans


# ----------------------------------------------------------------------------- policy


def test_policy_reject_threshold_on_a_review_rule() -> None:
    policy = Policy.from_dict(
        {"labels": {"threat": {"threshold": 0.5, "action": "review", "reject": 0.9}}}
    )
    scores = {"threat": 0.6}
    assert policy.decide({"toxicity": scores, "stance": {}}).decision == "review"
    decision = policy.decide({"toxicity": {"threat": 0.95}, "stance": {}})
    assert decision.decision == "reject" and decision.reasons[0].threshold == 0.9
    assert policy.decide({"toxicity": {"threat": 0.2}, "stance": {}}).decision == "approve"
    assert policy.to_dict()["labels"]["threat"] == {
        "threshold": 0.5,
        "action": "review",
        "reject": 0.9,
    }
    assert Policy.from_dict(policy.to_dict()) == policy
    assert policy.holds() == {"threat": 0.5}
    with pytest.raises(ValueError, match=r"'reject' .* needs action review"):
        Policy.from_dict(
            {"labels": {"threat": {"threshold": 0.5, "action": "review", "reject": 0.3}}}
        )
    with pytest.raises(ValueError, match="reject threshold 'x'"):
        Policy.from_dict(
            {"labels": {"threat": {"threshold": 0.5, "action": "review", "reject": "x"}}}
        )


# ----------------------------------------------------------------------------- calibration


def test_threat_is_calibrated_on_its_own_dev_splits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """threat reads the threat corpora's dev splits; toxicity only the news ones."""
    import numpy as np

    import training.calibrate as calibrate
    from classifier.model.predictor import CommentScores
    from training.data import make_example, to_dataset

    rng = np.random.default_rng(0)
    labels = ("toxicity", "threat")

    def corpus(name: str, *, data_root: object = None, split: str = "dev") -> object:
        rows = []
        for i in range(60):
            y = float(i % 2)
            known = {"toxicity": y} if name in calibrate.NEWS_DEV else {"threat": y}
            rows.append(
                make_example(
                    id=str(i), source=name, split="dev", text=f"{name} {y} {i}", toxicity=known
                )
            )
        return to_dataset(rows)

    class Fake:
        toxicity_labels = labels
        span_labels = ()

        def comment_scores(self, texts: list[str]) -> CommentScores:
            y = np.array([float(t.split()[1]) for t in texts])
            noisy = np.clip(0.3 * y + 0.35 + rng.normal(0, 0.1, len(y)), 0.01, 0.99)
            return CommentScores(np.stack([noisy, noisy], 1).astype(np.float32), None, None)

    comment = tmp_path / "model" / "comment"
    comment.mkdir(parents=True)
    (comment / "threadguard_config.json").write_text("{}", encoding="utf-8")
    monkeypatch.setattr(calibrate, "load_corpus", lambda name, root, split: corpus(name))
    monkeypatch.setattr(calibrate, "load_predictor", lambda *a, **k: Fake())
    saved = calibrate.fit_calibration(tmp_path / "model")
    assert set(saved["labels"]) == {"toxicity", "threat"}
    assert saved["label_fitted_on"]["toxicity"] == [f"{c}:dev" for c in calibrate.NEWS_DEV]
    assert saved["label_fitted_on"]["threat"][-3:] == [
        "news_threats:dev",
        "gab_hate:dev",
        "contrast:dev",
    ]
    assert saved["dev"]["threat"]["n"] == 180  # the three threat corpora, not the news ones
    assert saved["dev"]["toxicity"]["n"] == 180
    assert saved["dev"]["threat"]["ece_after"] < saved["dev"]["threat"]["ece_before"]


def test_threat_benchmark_figures_match_sklearn() -> None:
    import numpy as np
    from sklearn.metrics import precision_score, recall_score, roc_auc_score

    from tests.scripts import load_benchmark

    threat = load_benchmark("threat")
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.1).astype(int)
    prob = np.clip(0.4 * y + rng.random(500) * 0.6, 0, 1)
    found = threat.measure(prob, y, (0.5, 0.99), 100, 13)
    assert found["auc"] == pytest.approx(roc_auc_score(y, prob))
    at_half, at_top = found["thresholds"]
    assert at_half["precision"] == pytest.approx(precision_score(y, prob >= 0.5))
    assert at_half["recall"] == pytest.approx(recall_score(y, prob >= 0.5))
    lo, hi = at_half["recall_ci"]
    assert lo <= at_half["recall"] <= hi
    assert at_top["flagged"] == 0 and np.isnan(at_top["precision"])  # nothing flagged
