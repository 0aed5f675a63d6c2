"""Stance offsets: the search, folding them into a head's bias, reply offsets applied
at run time, saving them with the model, the trainer's end step and the ``fit-offsets``
command."""

from __future__ import annotations

import hashlib
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from classifier.cli import app
from classifier.model.config import ModelConfig
from classifier.model.constants import CACHE_ENV, onnx_available
from classifier.model.network import ThreadguardModel
from classifier.model.onnx_predictor import OnnxPredictor
from classifier.model.predictor import PredictOptions
from classifier.model.replies import is_reply, shift_classes
from classifier.model.torch_predictor import Predictor
from classifier.model.versions import version_digest
from classifier.targets import comment_item
from tests.test_backends import TOLERANCE
from tests.test_stance_heads import HEADS
from tests.test_trainer import FIXTURES, recipe
from training.config import TrainConfig
from training.corpora import load_corpus
from training.dev import predict_dataset
from training.metrics import dev_metrics
from training.mixing import CorpusData
from training.offsets import coordinate_ascent, fit_head_offsets, fit_stance_offsets
from training.trainer import train


def test_coordinate_ascent_finds_the_optimum_and_leaves_the_rest_at_zero() -> None:
    target = np.array([0.0, 1.2, -0.5, 0.0])

    def objective(x: np.ndarray) -> float:  # coordinate 3 changes nothing; 0 is not free
        return -float((x[1] - target[1]) ** 2 + (x[2] - target[2]) ** 2 + x[0] ** 2)

    found = coordinate_ascent(objective, 4, free=[1, 2, 3])
    np.testing.assert_allclose(found, target)


def rumour_dev() -> datasets.Dataset:
    """All the RumourEval fixture's labelled rows, standing in for a dev split."""
    splits = load_corpus("rumoureval2019", str(FIXTURES))
    rows = datasets.concatenate_datasets([splits[s] for s in ("train", "dev", "test")])
    return rows.filter(lambda r: r["stance"] >= 0)


def biased(config: ModelConfig) -> ThreadguardModel:
    """A model whose comment head says ``comment`` for almost everything."""
    torch.manual_seed(0)
    model = ThreadguardModel.from_encoder(config.replace(stance_heads=HEADS))
    with torch.no_grad():
        model.stance_head.weight.normal_(std=1.0)
        bias = model.stance_head.bias.view(len(HEADS), len(model.stance_labels))
        bias.zero_()
        bias[0, model.stance_labels.index("comment")] = 3.0
    return model


def test_offsets_are_folded_into_the_head_and_raise_its_dev_metric(
    tiny_config: ModelConfig,
) -> None:
    model = biased(tiny_config)
    dev = rumour_dev()
    corpora = [CorpusData("rumoureval2019", None, dev)]
    before, _ = predict_dataset(model, dev, 8, "comment")
    other_before, _ = predict_dataset(model, dev, 8, "claim")

    record = fit_head_offsets(model, "comment", corpora, batch_size=8)

    gold = [model.stance_labels[s] for s in dev["stance"]]  # the fixture's are in that order
    assert record["anchor"] == max(set(gold), key=gold.count)
    assert set(record["offsets"]) == set(gold) - {record["anchor"]}
    assert record["dev_after"] > record["dev_before"]
    assert model.stance_offsets == [record]
    after, _ = predict_dataset(model, dev, 8, "comment")
    shift = np.array([record["offsets"].get(c, 0.0) for c in model.stance_labels])
    expected = before * np.exp(shift)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(after, expected, atol=1e-5)
    empty = np.zeros((len(dev), 0))
    found = dev_metrics(dev, after, empty, model.stance_labels, (), "rumoureval2019")
    assert found["primary"] == pytest.approx(record["dev_after"])
    other_after, _ = predict_dataset(model, dev, 8, "claim")
    np.testing.assert_allclose(other_after, other_before, atol=1e-6)


def test_fitting_needs_a_known_head_with_a_dev_split(tiny_config: ModelConfig) -> None:
    model = biased(tiny_config)
    with pytest.raises(ValueError, match=r"stance head 'reply' is not one of the model's heads"):
        fit_head_offsets(model, "reply", [], batch_size=8)
    with pytest.raises(ValueError, match=r"stance head 'topic': none of its corpora"):
        fit_head_offsets(model, "topic", [CorpusData("rumoureval2019", None, rumour_dev())])


def _digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_recipe_fits_offsets_after_training_and_the_model_keeps_them(
    tiny_encoder_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m"
    config = recipe(
        tiny_encoder_dir, out, corpora=["rumoureval2019", "olid"], stance_offsets=["comment"]
    )
    train(config)
    model = ThreadguardModel.from_pretrained(out)
    assert model.training_config is not None
    assert model.training_config["stance_offsets"] == ["comment"]
    assert model.stance_offsets is not None
    assert [r["head"] for r in model.stance_offsets] == ["comment"]
    assert model.stance_offsets[0]["corpora"] == ["rumoureval2019"]

    # a resumed run that had finished does not fit twice
    files = _digest(out)
    assert fit_stance_offsets(out, refit=False) == []
    assert _digest(out) == files

    # refitting a copy changes only the heads and the metadata, and round-trips
    copy = tmp_path / "copy"
    records = fit_stance_offsets(out, output_dir=copy)
    assert [r["head"] for r in records] == ["comment"]
    changed = {k for k, v in _digest(copy).items() if files.get(k) != v}
    assert changed <= {"heads.safetensors", "threadguard_config.json"}
    assert _digest(out) == files  # the source is left alone
    again = ThreadguardModel.from_pretrained(copy)
    assert again.stance_offsets is not None and len(again.stance_offsets) == 2
    if any(v != 0 for v in records[0]["offsets"].values()):
        assert version_digest(again) != version_digest(model)


def test_recipe_checks_the_offset_heads_before_training(
    tiny_encoder_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"stance_offsets names \['reply'\], not among"):
        TrainConfig.from_dict({"corpora": ["olid"], "stance_offsets": ["reply"]})
    with pytest.raises(
        ValueError, match="stance_offsets: input should be a valid tuple, got 'comment'"
    ):
        TrainConfig.from_dict({"corpora": ["olid"], "stance_offsets": "comment"})
    config = recipe(tiny_encoder_dir, tmp_path / "m", corpora=["olid"], stance_offsets=["comment"])
    with pytest.raises(ValueError, match="stance head 'comment' has no corpus with a dev split"):
        train(config)
    assert not (tmp_path / "m" / "heads.safetensors").exists()


def test_fit_offsets_command(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    train(recipe(tiny_encoder_dir, out, corpora=["rumoureval2019", "olid"], max_steps=2))
    result = CliRunner().invoke(app, ["fit-offsets", str(out), "-o", str(tmp_path / "fitted")])
    assert result.exit_code == 0, result.output
    assert "comment: " in result.output and "dev primary" in result.output
    assert ThreadguardModel.from_pretrained(tmp_path / "fitted").stance_offsets is not None
    bad = CliRunner().invoke(app, ["fit-offsets", str(out), "--head", "reply"])
    assert bad.exit_code != 0 and "not one of the model's heads" in bad.output


# --------------------------------------------------------------------------- reply offsets


def with_replies(dev: datasets.Dataset) -> tuple[datasets.Dataset, np.ndarray]:
    """``dev`` with every other row turned into a reply (given a context); and that mask."""
    replies = np.arange(len(dev)) % 2 == 1
    contexts = ["the thread's source post" if r else "" for r in replies]
    return dev.remove_columns("context").add_column("context", contexts), replies


def test_shift_classes_reweights_one_heads_classes_within_their_mass() -> None:
    probs = np.array([[0.1, 0.2, 0.3, 0.4, 0.0], [0.25, 0.25, 0.0, 0.25, 0.25]])
    offsets = np.log(np.array([2.0, 1.0, 1.0, 1.0, 9.0]))
    shifted = shift_classes(probs, offsets, [0, 1, 3])
    np.testing.assert_allclose(shifted[:, 2], probs[:, 2])  # outside ``classes``: untouched
    np.testing.assert_allclose(shifted[:, 4], probs[:, 4])
    np.testing.assert_allclose(shifted.sum(axis=1), probs.sum(axis=1))
    np.testing.assert_allclose(shifted[0, [0, 1, 3]], np.array([0.2, 0.2, 0.4]) * 0.7 / 0.8)


def test_reply_offsets_shift_replies_only_and_leave_the_head_alone(
    tiny_config: ModelConfig,
) -> None:
    model = biased(tiny_config)
    dev, replies = with_replies(rumour_dev())
    corpora = [CorpusData("rumoureval2019", None, dev)]
    before, _ = predict_dataset(model, dev, 8, "comment")
    comment_before, _ = predict_dataset(model, dev, 8)
    bias = model.stance_head.bias.detach().clone()

    record = fit_head_offsets(model, "comment", corpora, batch_size=8, inputs="replies")

    assert record["inputs"] == "replies" and record["rows_shifted"] == int(replies.sum())
    assert torch.equal(model.stance_head.bias, bias)  # not folded: it depends on the input
    assert any(v != 0 for v in record["offsets"].values())
    after, _ = predict_dataset(model, dev, 8, "comment")
    np.testing.assert_allclose(after[~replies], before[~replies], atol=1e-6)
    shift = np.array([record["offsets"].get(c, 0.0) for c in model.stance_labels])
    expected = before[replies] * np.exp(shift)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(after[replies], expected, atol=1e-5)
    found = dev_metrics(
        dev, after, np.zeros((len(dev), 0)), model.stance_labels, (), "rumoureval2019"
    )
    assert found["primary"] == pytest.approx(record["dev_after"])
    # the comment output (all five classes) moves the same way, within the head's share
    comment_after, _ = predict_dataset(model, dev, 8)
    np.testing.assert_allclose(comment_after[~replies], comment_before[~replies], atol=1e-6)
    unrelated = model.stance_labels.index("unrelated")
    np.testing.assert_allclose(comment_after[:, unrelated], comment_before[:, unrelated], atol=1e-6)
    assert not np.allclose(comment_after[replies], comment_before[replies], atol=1e-4)

    # a refit starts from the head's own output and replaces the record
    again = fit_head_offsets(model, "comment", corpora, batch_size=8, inputs="replies")
    assert again["offsets"] == record["offsets"] and again["dev_before"] == record["dev_before"]
    assert model.stance_offsets == [again]


def test_reply_offsets_need_the_comment_head_and_a_reply(tiny_config: ModelConfig) -> None:
    model = biased(tiny_config)
    dev, _ = with_replies(rumour_dev())
    with pytest.raises(ValueError, match="applied to the comment head 'comment' only, not 'claim'"):
        fit_head_offsets(model, "claim", [CorpusData("fnc1", None, dev)], inputs="replies")
    flat = dev.remove_columns("context").add_column("context", [""] * len(dev))
    with pytest.raises(ValueError, match="no dev split of its corpora has a labelled reply"):
        fit_head_offsets(model, "comment", [CorpusData("rumoureval2019", None, flat)], 8, "replies")


def test_a_reply_flag_overrides_the_context_rule(tiny_config: ModelConfig) -> None:
    model = biased(tiny_config)
    dev, _ = with_replies(rumour_dev())
    fit_head_offsets(model, "comment", [CorpusData("rumoureval2019", None, dev)], 8, "replies")
    predictor = Predictor(model, options=PredictOptions(batch_size=8))
    parent, text = "The mayor resigned yesterday.", "That is not true, he is still in office."
    items = [
        {"text": text, "target": parent, "context": "Mayor news"},  # reply by its context
        {"text": text, "target": parent, "context": ""},  # no context, no flag: top level
        comment_item(text, parent),  # a reply under an untitled article: flagged
        {"text": text, "target": parent, "context": "Mayor news", "reply": False},
        {"text": text, "target": parent, "context": "", "reply": True},
    ]
    assert [is_reply(i) for i in items] == [True, False, True, False, True]
    stance = predictor.score_arrays(items).stance
    plain = (
        Predictor(biased(tiny_config), options=PredictOptions(batch_size=8))
        .score_arrays(items)
        .stance
    )
    assert not np.allclose(stance[0], plain[0], atol=1e-4)
    np.testing.assert_allclose(stance[1], plain[1], atol=1e-6)
    np.testing.assert_allclose(stance[3], plain[3], atol=1e-6)
    assert not np.allclose(stance[2], plain[2], atol=1e-4)
    np.testing.assert_allclose(stance[2], stance[4], atol=1e-6)


def test_saved_reply_offsets_reach_every_predictor(
    tiny_config: ModelConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = biased(tiny_config)
    dev, replies = with_replies(rumour_dev())
    plain = (
        Predictor(model, options=PredictOptions(batch_size=8))
        .score_arrays(dev.select_columns(["target", "context", "text"]))
        .stance
    )
    fit_head_offsets(model, "comment", [CorpusData("rumoureval2019", None, dev)], 8, "replies")
    saved = model.save_pretrained(tmp_path / "m")
    items = dev.select_columns(["target", "context", "text"])
    torch_out = (
        Predictor(ThreadguardModel.from_pretrained(saved), options=PredictOptions(batch_size=8))
        .score_arrays(items)
        .stance
    )
    assert not np.allclose(torch_out[replies], plain[replies], atol=1e-4)
    np.testing.assert_allclose(torch_out[~replies], plain[~replies], atol=1e-6)
    if not onnx_available():
        return
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    lean = OnnxPredictor.from_folder(saved, backend="onnx", options=PredictOptions(batch_size=8))
    onnx_out = lean.score_arrays(items).stance
    assert np.abs(onnx_out - torch_out).max() <= TOLERANCE["onnx"]


def test_recipe_fits_reply_offsets_after_training(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match="reply_offsets: input should be a valid boolean, got 'yes'"
    ):
        TrainConfig.from_dict({"corpora": ["olid"], "reply_offsets": "yes"})
    out = tmp_path / "m"
    train(recipe(tiny_encoder_dir, out, corpora=["rumoureval2019", "olid"], reply_offsets=True))
    model = ThreadguardModel.from_pretrained(out)
    assert model.stance_offsets is not None
    assert [(r["head"], r["inputs"]) for r in model.stance_offsets] == [("comment", "replies")]
    files = _digest(out)
    assert fit_stance_offsets(out, refit=False, inputs="replies") == []  # a finished run resumed
    assert _digest(out) == files
    result = CliRunner().invoke(
        app, ["fit-offsets", str(out), "--replies", "-o", str(tmp_path / "c")]
    )
    assert result.exit_code == 0, result.output
    assert "comment (replies): " in result.output
    copy = ThreadguardModel.from_pretrained(tmp_path / "c")
    assert copy.stance_offsets is not None and len(copy.stance_offsets) == 1  # replaced


def test_recipe_checks_for_replies_before_training(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    config = recipe(tiny_encoder_dir, tmp_path / "m", corpora=["olid"], reply_offsets=True)
    with pytest.raises(ValueError, match="reply_offsets: no dev split of the comment head"):
        train(config)


def test_reply_offsets_change_the_model_version(tiny_config: ModelConfig) -> None:
    model = biased(tiny_config)
    plain = version_digest(model)
    dev, _ = with_replies(rumour_dev())
    fit_head_offsets(model, "comment", [CorpusData("rumoureval2019", None, dev)], 8, "replies")
    assert version_digest(model) != plain
