"""Stance heads per label scheme: config checks, the composed comment output, training
through each row's head, the round trip, and every predictor reading a named head."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from classifier import runtime
from classifier.inference import Predictor
from classifier.modeling import ModelConfig, StanceHead, ThreadguardModel, label_tensors
from classifier.runtime import OnnxPredictor
from tests.test_backends import SAMPLE, TOLERANCE, decisive, needs_onnx
from tests.test_trainer import FIXTURES, recipe
from training.baselines import TransformerScorer
from training.config import TrainConfig
from training.corpora import load_corpus
from training.trainer import train

HEADS = [
    {"name": "comment", "corpora": ["rumoureval2019"], "classes": ["support", "deny", "query", "comment"]},
    {"name": "claim", "corpora": ["fnc1", "arc"], "classes": ["support", "deny", "comment", "unrelated"]},
    {"name": "topic", "corpora": ["semeval2016_stance"], "classes": ["support", "deny", "comment"]},
]  # fmt: skip


@pytest.fixture
def headed(tiny_config: ModelConfig) -> ThreadguardModel:
    torch.manual_seed(0)
    config = dataclasses.replace(tiny_config, stance_heads=HEADS)  # type: ignore[arg-type]
    return decisive(ThreadguardModel.from_encoder(config))


def test_config_checks_the_heads(tiny_config: ModelConfig) -> None:
    def build(heads: object) -> ModelConfig:
        return dataclasses.replace(tiny_config, stance_heads=heads)  # type: ignore[arg-type]

    with pytest.raises(ValueError, match=r"unknown stance head 'a' key\(s\) \['corpus'\]"):
        build([{"name": "a", "corpus": ["arc"]}])
    with pytest.raises(ValueError, match=r"names must differ, got \['a', 'a'\]"):
        build([{"name": "a"}, {"name": "a"}])
    with pytest.raises(ValueError, match=r"corpora \['arc'\] are given to more than one"):
        build([{"name": "a", "corpora": ["arc"]}, {"name": "b", "corpora": ["arc"]}])
    with pytest.raises(ValueError, match=r"unknown b head label\(s\) \['agree'\]"):
        build([{"name": "a"}, {"name": "b", "classes": ["agree", "deny"]}])
    with pytest.raises(ValueError, match="corpora must be a list, got 'arc'"):
        build([{"name": "a", "corpora": "arc"}])
    narrow = dataclasses.replace(tiny_config, stance_labels=("support", "deny"))
    with pytest.raises(ValueError, match=r"classes \['query'\] that are not among"):
        dataclasses.replace(narrow, stance_heads=[{"name": "a", "classes": ["deny", "query"]}])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"head 'claim' names corpora \['fnc1'\] that the recipe"):
        TrainConfig.from_dict(
            {
                "corpora": ["arc"],
                "model": {"stance_heads": [{"name": "claim", "corpora": ["fnc1"]}]},
            }
        )
    config = build(HEADS)
    assert [h.name for h in config.heads] == ["comment", "claim", "topic"]
    assert (config.head_for("arc"), config.head_for("olid")) == ("claim", "comment")
    assert ModelConfig.from_dict(config.to_dict()) == config
    # a model that names no head has one, for every corpus, over all its classes
    assert tiny_config.heads == (StanceHead("comment", (), tiny_config.stance_labels),)


def test_comment_output_borrows_the_class_its_head_lacks(headed: ThreadguardModel) -> None:
    batch = headed.encode(
        [i["target"] for i in SAMPLE], [i["context"] for i in SAMPLE], [i["text"] for i in SAMPLE]
    )
    with torch.no_grad():
        out = headed(**batch)
    by_head = torch.softmax(out.stance_head_logits, dim=-1)
    assert by_head.shape == (len(SAMPLE), 3, 5)
    labels = list(headed.stance_labels)
    # each head gives its own classes all the probability
    for h, head in enumerate(HEADS):
        missing = [labels.index(c) for c in labels if c not in head["classes"]]
        assert by_head[:, h, missing].max() < 1e-6
    comment = torch.softmax(out.stance_logits, dim=-1)
    unrelated = labels.index("unrelated")
    # P(unrelated) from the claim head, the comment head's distribution scaled to the rest
    assert torch.allclose(comment[:, unrelated], by_head[:, 1, unrelated], atol=1e-5)
    rest = by_head[:, 0] * (1 - by_head[:, 1, unrelated]).unsqueeze(1)
    others = [k for k in range(5) if k != unrelated]
    assert torch.allclose(comment[:, others], rest[:, others], atol=1e-5)
    assert torch.allclose(comment.sum(dim=1), torch.ones(len(SAMPLE)), atol=1e-5)


def test_each_row_trains_its_own_head(headed: ThreadguardModel) -> None:
    rows = [
        {"source": "arc", "text": "t", "stance": 4, "stance_classes": HEADS[1]["classes"]},
        {"source": "rumoureval2019", "text": "u", "stance": 1, "stance_classes": HEADS[0]["classes"]},
        {"source": "olid", "text": "v", "stance": -1, "stance_classes": [], "toxicity": 1.0},
    ]  # fmt: skip
    labels = label_tensors(rows, headed.stance_labels, headed.toxicity_labels, headed.config)
    assert labels["stance_head"].tolist() == [1, 0, 0]
    assert "stance_head" not in label_tensors(rows, headed.stance_labels, headed.toxicity_labels)
    batch = headed.collate(rows)
    assert batch["stance_head"].tolist() == [1, 0, 0]
    headed.zero_grad()
    headed(**batch).loss.backward()
    grad = headed.stance_head.weight.grad.view(3, 5, -1).abs().sum(dim=-1)  # [H, S]
    assert grad[2].sum() == 0  # no SemEval row: the topic head learns nothing
    assert grad[0].sum() > 0 and grad[1].sum() > 0
    assert grad[0, 4] == 0  # the comment head never learns 'unrelated'


def test_heads_round_trip_and_every_predictor_reads_a_named_head(
    headed: ThreadguardModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = headed.save_pretrained(tmp_path / "m")
    loaded = ThreadguardModel.from_pretrained(saved)
    assert loaded.config.heads == headed.config.heads
    predictor = Predictor(loaded, batch_size=8)
    assert predictor.stance_heads == {"comment": ("rumoureval2019",), "claim": ("fnc1", "arc"),
                                      "topic": ("semeval2016_stance",)}  # fmt: skip
    assert predictor.head_for("semeval2016_stance") == "topic"
    assert predictor.head_for("olid") == predictor.comment_head == "comment"
    topic, _ = predictor.predict_arrays(SAMPLE, stance_head="topic")
    comment, tox = predictor.predict_arrays(SAMPLE)
    reference, _ = Predictor(headed, batch_size=8).predict_arrays(SAMPLE, stance_head="topic")
    assert np.abs(topic - reference).max() < 1e-5
    assert topic[:, [2, 4]].max() < 1e-6 and np.allclose(topic.sum(axis=1), 1, atol=1e-5)
    assert not np.allclose(topic, comment, atol=1e-3)
    with pytest.raises(ValueError, match=r"no stance head 'rumour'; this model has \['comment'"):
        predictor.predict_arrays(SAMPLE, stance_head="rumour")
    if runtime.onnx_available():
        monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "cache"))
        lean = OnnxPredictor.from_folder(saved, backend="onnx", batch_size=8)
        assert lean.stance_heads == predictor.stance_heads
        lean_topic, _ = lean.predict_arrays(SAMPLE, stance_head="topic")
        lean_comment, lean_tox = lean.predict_arrays(SAMPLE)
        assert np.abs(lean_topic - topic).max() <= TOLERANCE["onnx"]
        assert np.abs(lean_comment - comment).max() <= TOLERANCE["onnx"]
        assert np.abs(lean_tox - tox).max() <= TOLERANCE["onnx"]


@needs_onnx
def test_a_model_with_one_head_exports_and_scores_as_before(
    tiny_model: ThreadguardModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "cache"))
    saved = decisive(tiny_model).save_pretrained(tmp_path / "one")
    lean = OnnxPredictor.from_folder(saved, backend="onnx", batch_size=8)
    assert lean.stance_heads == {"comment": ()}
    plain, _ = lean.predict_arrays(SAMPLE)
    named, _ = lean.predict_arrays(SAMPLE, stance_head="comment")
    assert np.abs(plain - named).max() < 1e-6


def test_training_fills_each_heads_classes_and_evaluation_uses_them(
    tiny_encoder_dir: Path, tmp_path: Path
) -> None:
    heads = [{"name": "comment", "corpora": ["rumoureval2019"]},
             {"name": "claim", "corpora": ["fnc1", "arc"]},
             {"name": "topic", "corpora": ["semeval2016_stance"]}]  # fmt: skip
    config = recipe(tiny_encoder_dir, tmp_path / "m", max_steps=2, eval_every=2)
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, stance_heads=heads)
    )  # type: ignore[arg-type]
    train(config)
    model = ThreadguardModel.from_pretrained(tmp_path / "m")
    assert [(h.name, h.classes) for h in model.config.heads] == [
        ("comment", ("support", "deny", "query", "comment")),
        ("claim", ("support", "deny", "comment", "unrelated")),
        ("topic", ("support", "deny", "comment")),
    ]
    scorer = TransformerScorer(str(tmp_path / "m"), tmp_path / "m")
    semeval = load_corpus("semeval2016_stance", FIXTURES)["test"]
    scores = scorer.score("semeval2016_stance", semeval, None)  # type: ignore[arg-type]
    assert scores.stance is not None
    assert scores.stance[:, [2, 4]].max() < 1e-6  # the topic head: no query, no unrelated


def test_a_head_without_two_classes_is_refused(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    config = recipe(tiny_encoder_dir, tmp_path / "m", corpora=["olid", "semeval2016_stance"])
    heads = [{"name": "comment"}, {"name": "topic", "corpora": ["semeval2016_stance"]}]
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, stance_heads=heads)
    )  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"stance head 'comment' would learn \[\]"):
        train(config)
