"""Stance heads per label scheme: config checks, the composed comment output, training
through each row's head, the round trip, and every predictor reading a named head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from classifier.model import constants
from classifier.model.config import ModelConfig, StanceHead
from classifier.model.network import ThreadguardModel
from classifier.model.onnx_predictor import OnnxPredictor
from classifier.model.predictor import PredictOptions
from classifier.model.torch_predictor import Predictor
from classifier.model.versions import version_digest
from tests.test_backends import SAMPLE, TOLERANCE, decisive, needs_onnx
from tests.test_trainer import FIXTURES, recipe
from training.baselines import TransformerScorer
from training.batches import label_tensors, training_batch
from training.config import TrainConfig
from training.corpora import load_corpus
from training.losses import batch_loss
from training.trainer import train

HEADS = [
    {"name": "comment", "corpora": ["rumoureval2019"], "classes": ["support", "deny", "query", "comment"]},
    {"name": "claim", "corpora": ["fnc1", "arc"], "classes": ["support", "deny", "comment", "unrelated"]},
    {"name": "topic", "corpora": ["semeval2016_stance"], "classes": ["support", "deny", "comment"]},
]  # fmt: skip


@pytest.fixture
def headed(tiny_config: ModelConfig) -> ThreadguardModel:
    torch.manual_seed(0)
    config = tiny_config.replace(stance_heads=HEADS)
    return decisive(ThreadguardModel.from_encoder(config))


def test_config_checks_the_heads(tiny_config: ModelConfig) -> None:
    def build(heads: object) -> ModelConfig:
        return tiny_config.replace(stance_heads=heads)

    with pytest.raises(ValueError, match=r"stance_heads.0: unknown key 'corpus'"):
        build([{"name": "a", "corpus": ["arc"]}])
    with pytest.raises(ValueError, match=r"names must differ, got \['a', 'a'\]"):
        build([{"name": "a"}, {"name": "a"}])
    with pytest.raises(ValueError, match=r"corpora \['arc'\] are given to more than one"):
        build([{"name": "a", "corpora": ["arc"]}, {"name": "b", "corpora": ["arc"]}])
    with pytest.raises(
        ValueError, match=r"stance_heads.1.classes: unknown stance label\(s\) \['agree'\]"
    ):
        build([{"name": "a"}, {"name": "b", "classes": ["agree", "deny"]}])
    with pytest.raises(
        ValueError, match=r"stance_heads.0.corpora: input should be a valid tuple, got 'arc'"
    ):
        build([{"name": "a", "corpora": "arc"}])
    narrow = tiny_config.replace(stance_labels=("support", "deny"))
    with pytest.raises(ValueError, match=r"classes \['query'\] that are not among"):
        narrow.replace(stance_heads=[{"name": "a", "classes": ["deny", "query"]}])
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
    assert tiny_config.heads == (StanceHead(name="comment", classes=tiny_config.stance_labels),)


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
        {"source": "arc", "text": "t", "stance": 0, "stance_classes": HEADS[1]["classes"]},
        {"source": "semeval2016_stance", "text": "u", "stance": 1, "stance_classes": HEADS[2]["classes"]},
        {"source": "olid", "text": "v", "stance": -1, "stance_classes": [], "toxicity": 1.0},
    ]  # fmt: skip
    labels = label_tensors(rows, headed.stance_labels, headed.toxicity_labels, headed.config)
    assert labels["stance_head"].tolist() == [1, 2, 0]
    assert "stance_head" not in label_tensors(rows, headed.stance_labels, headed.toxicity_labels)
    batch = training_batch(headed, rows)
    assert batch["stance_head"].tolist() == [1, 2, 0]
    headed.zero_grad()
    batch_loss(headed, batch)[0].backward()
    grad = headed.stance_head.weight.grad.view(3, 5, -1).abs().sum(dim=-1)  # [H, S]
    assert grad[0].sum() == 0  # no RumourEval row: the comment head learns nothing
    assert grad[1].sum() > 0 and grad[2].sum() > 0
    assert grad[2, 2] == 0 and grad[2, 4] == 0  # the topic head has no query, no unrelated


def test_the_training_loop_routes_each_row_to_its_head(
    tiny_encoder_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training import losses as losses_module

    seen: list[list[int]] = []
    original = losses_module.select_heads

    def spy(output, heads):  # type: ignore[no-untyped-def]
        seen.append(heads.tolist())
        return original(output, heads)

    monkeypatch.setattr(losses_module, "select_heads", spy)
    corpora = ["rumoureval2019", "arc", "semeval2016_stance", "olid"]
    config = recipe(tiny_encoder_dir, tmp_path / "m", corpora=corpora, max_steps=6, eval_every=6)
    heads = [{"name": "comment"}, {"name": "claim", "corpora": ["arc"]},
             {"name": "topic", "corpora": ["semeval2016_stance"]}]  # fmt: skip
    model_config = config.model.replace(stance_heads=heads)
    train(config.replace(model=model_config))
    assert len(seen) == 6 and {h for batch in seen for h in batch} == {0, 1, 2}


def test_a_model_without_heads_keeps_its_config_and_version(
    tiny_model: ThreadguardModel, tmp_path: Path
) -> None:
    saved = json.loads(json.dumps(tiny_model.config.to_dict()))
    assert "stance_heads" not in saved  # what models saved before heads carry
    assert ModelConfig.from_dict(saved).to_dict() == saved
    before = version_digest(tiny_model)
    loaded = ThreadguardModel.from_pretrained(tiny_model.save_pretrained(tmp_path / "one"))
    assert version_digest(loaded) == before
    reference = (
        Predictor(tiny_model, options=PredictOptions(batch_size=8)).score_arrays(SAMPLE).stance
    )
    with torch.no_grad():
        batch = tiny_model.encode(*([i[k] for i in SAMPLE] for k in ("target", "context", "text")))
        raw = tiny_model(**batch)
    # one head: the comment output is that head's logits, untouched
    assert torch.equal(raw.stance_logits, raw.stance_head_logits[:, 0])
    assert np.abs(reference - torch.softmax(raw.stance_logits, -1).numpy()).max() < 1e-6


def test_heads_round_trip_and_the_torch_predictor_reads_a_named_head(
    headed: ThreadguardModel, tmp_path: Path
) -> None:
    saved = headed.save_pretrained(tmp_path / "m")
    loaded = ThreadguardModel.from_pretrained(saved)
    assert loaded.config.heads == headed.config.heads
    predictor = Predictor(loaded, options=PredictOptions(batch_size=8))
    assert {n: h.corpora for n, h in predictor.stance_heads.items()} == {
        "comment": ("rumoureval2019",), "claim": ("fnc1", "arc"), "topic": ("semeval2016_stance",)
    }  # fmt: skip
    assert predictor.stance_heads["topic"].classes == ("support", "deny", "comment")
    assert predictor.head_for("semeval2016_stance") == "topic"
    assert predictor.head_for("olid") == predictor.comment_head == "comment"
    topic = predictor.score_arrays(SAMPLE, stance_head="topic").stance
    comment = predictor.score_arrays(SAMPLE).stance
    reference = (
        Predictor(headed, options=PredictOptions(batch_size=8))
        .score_arrays(SAMPLE, stance_head="topic")
        .stance
    )
    assert np.abs(topic - reference).max() < 1e-5
    assert topic[:, [2, 4]].max() < 1e-6 and np.allclose(topic.sum(axis=1), 1, atol=1e-5)
    assert not np.allclose(topic, comment, atol=1e-3)
    with pytest.raises(ValueError, match=r"no stance head 'rumour'; this model has \['comment'"):
        predictor.score_arrays(SAMPLE, stance_head="rumour")


@needs_onnx
def test_the_onnx_predictor_reads_the_same_heads(
    headed: ThreadguardModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(constants.CACHE_ENV, str(tmp_path / "cache"))
    saved = headed.save_pretrained(tmp_path / "m")
    reference = Predictor(
        ThreadguardModel.from_pretrained(saved), options=PredictOptions(batch_size=8)
    )
    lean = OnnxPredictor.from_folder(saved, backend="onnx", options=PredictOptions(batch_size=8))
    assert lean.stance_heads == reference.stance_heads
    for head in (None, "comment", "claim", "topic"):
        ours, tox, _, _ = lean.score_arrays(SAMPLE, stance_head=head)
        theirs, ref_tox, _, _ = reference.score_arrays(SAMPLE, stance_head=head)
        assert np.abs(ours - theirs).max() <= TOLERANCE["onnx"], head
        assert np.abs(tox - ref_tox).max() <= TOLERANCE["onnx"]


def test_training_fills_each_heads_classes_and_evaluation_uses_them(
    tiny_encoder_dir: Path, tmp_path: Path
) -> None:
    heads = [{"name": "comment", "corpora": ["rumoureval2019"]},
             {"name": "claim", "corpora": ["fnc1", "arc"]},
             {"name": "topic", "corpora": ["semeval2016_stance"]}]  # fmt: skip
    config = recipe(tiny_encoder_dir, tmp_path / "m", max_steps=2, eval_every=2)
    config = config.replace(model=config.model.replace(stance_heads=heads))
    train(config)
    model = ThreadguardModel.from_pretrained(tmp_path / "m")
    assert [(h.name, h.classes) for h in model.config.heads] == [
        ("comment", ("support", "deny", "query", "comment")),
        ("claim", ("support", "deny", "comment", "unrelated")),
        ("topic", ("support", "deny", "comment")),
    ]
    scorer = TransformerScorer(str(tmp_path / "m"), tmp_path / "m")
    semeval = load_corpus("semeval2016_stance", FIXTURES)["test"]
    scores = scorer.score("semeval2016_stance", semeval, None)
    assert scores.stance is not None and scores.stance_labels == ("support", "deny", "comment")
    direct = scorer.predictor.score_arrays(semeval, stance_head="topic").stance
    assert np.abs(scores.stance - direct[:, [0, 1, 3]]).max() < 1e-6


def test_a_head_without_two_classes_is_refused(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    config = recipe(tiny_encoder_dir, tmp_path / "m", corpora=["olid", "semeval2016_stance"])
    heads = [{"name": "comment"}, {"name": "topic", "corpora": ["semeval2016_stance"]}]
    config = config.replace(model=config.model.replace(stance_heads=heads))
    with pytest.raises(ValueError, match=r"stance head 'comment' would learn \[\]"):
        train(config)
