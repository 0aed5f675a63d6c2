"""Stance offsets: the search, folding them into a head's bias, saving them with the
model, the trainer's end step and the ``fit-offsets`` command."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from classifier.cli import app
from classifier.inference import version_digest
from classifier.modeling import ModelConfig, ThreadguardModel
from tests.test_stance_heads import HEADS
from tests.test_trainer import FIXTURES, recipe
from training.config import TrainConfig
from training.corpora import load_corpus
from training.metrics import dev_metrics
from training.offsets import coordinate_ascent, fit_head_offsets, fit_stance_offsets
from training.trainer import CorpusData, predict_dataset, train


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
    model = ThreadguardModel.from_encoder(dataclasses.replace(config, stance_heads=HEADS))  # type: ignore[arg-type]
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
    with pytest.raises(ValueError, match="stance_offsets must be a list of head names"):
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
