"""The two-pass model: stance from (target, comment) pairs, toxicity from the comment
model reading each comment alone and whole (windows, max over windows), calibrated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from classifier.model.config import ModelConfig
from classifier.model.constants import COMMENT_DIR, CONFIG_FILE
from classifier.model.loading import load_predictor
from classifier.model.network import ThreadguardModel
from classifier.model.predictor import PredictOptions
from tests.test_backends import needs_onnx

LONG = " ".join(["the council met on tuesday to discuss the bus budget"] * 30) + " you idiot"


@pytest.fixture
def two_pass(tiny_config: ModelConfig, tmp_path: Path) -> Path:
    """A saved model folder with a comment model (other random weights) beside it."""
    torch.manual_seed(0)
    outer = tmp_path / "model"
    ThreadguardModel.from_encoder(tiny_config).save_pretrained(outer)
    torch.manual_seed(1)
    ThreadguardModel.from_encoder(tiny_config).save_pretrained(outer / COMMENT_DIR)
    return outer


def test_windows_cover_a_long_comment_whole(tiny_model: ThreadguardModel) -> None:
    encoder = tiny_model.input_encoder
    ids = encoder._tokenize([LONG])[0]
    windows = encoder.windows([LONG, "short one", ""], overlap=8)
    owners = [i for i, _ in windows]
    assert owners.count(1) == 1 and owners.count(2) == 1  # short and empty: one window each
    long_windows = [w for i, w in windows if i == 0]
    assert len(long_windows) > 1
    assert all(len(w) <= encoder.max_length for w in long_windows)
    # every token of the long comment is in some window: the last ones too
    seen = [t for w in long_windows for t, m in zip(w.input_ids, w.comment_mask, strict=True) if m]
    assert seen[-len(ids[-5:]) :] == ids[-5:]
    assert len(seen) >= len(ids)
    # a comment that fits is one window, the input encode() gives it without a target
    (one,) = encoder.encode([""], None, ["short one"])
    assert windows[-2][1].input_ids == one.input_ids
    with pytest.raises(ValueError, match="overlap"):
        encoder.windows(["x"], overlap=encoder.max_length)


def test_toxicity_comes_from_the_comment_model_and_stance_from_the_outer(two_pass: Path) -> None:
    items = [{"text": "you idiot", "target": "Bus budget passes"}, {"text": LONG, "target": ""}]
    both = load_predictor(two_pass, backend="torch")
    outer = load_predictor(two_pass, backend="torch", comment_model=False)
    alone = load_predictor(two_pass / COMMENT_DIR, backend="torch")
    stance, tox, _, _ = both.score_arrays(items)
    np.testing.assert_allclose(stance, outer.score_arrays(items).stance, atol=1e-6)
    # toxicity ignores the target: the comment model on the text alone, max over windows
    expected = alone.comment_scores([i["text"] for i in items]).toxicity
    np.testing.assert_allclose(tox, expected, atol=1e-6)
    assert not np.allclose(tox, outer.score_arrays(items).toxicity, atol=1e-3)
    windows = alone.input_encoder.windows([LONG])
    per_window = np.stack([alone._run_batch([w])[1][0] for _, w in windows])
    np.testing.assert_allclose(tox[1], per_window.max(axis=0), atol=1e-5)
    assert both.model_version.startswith(outer.model_version + "+")


def test_calibration_is_saved_with_the_comment_model_and_applied(two_pass: Path) -> None:
    path = two_pass / COMMENT_DIR / CONFIG_FILE
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["calibration"] = {"method": "platt", "labels": {"toxicity": [2.0, -1.0]}}
    path.write_text(json.dumps(meta), encoding="utf-8")
    items = [{"text": "you idiot"}, {"text": "a calm remark about buses"}]
    calibrated = load_predictor(two_pass, backend="torch")
    alone = load_predictor(two_pass / COMMENT_DIR, backend="torch")
    assert alone.calibration == {"toxicity": (2.0, -1.0)}  # a folder carries its calibration
    raw_model = load_predictor(two_pass / COMMENT_DIR, backend="torch", calibrated=False)
    assert raw_model.calibration is None
    raw = raw_model.comment_scores([i["text"] for i in items]).toxicity
    tox = calibrated.score_arrays(items).toxicity
    j = calibrated.toxicity_labels.index("toxicity")
    logit = np.log(raw[:, j] / (1 - raw[:, j]))
    np.testing.assert_allclose(tox[:, j], 1 / (1 + np.exp(-(2.0 * logit - 1.0))), atol=1e-5)
    others = [k for k in range(tox.shape[1]) if k != j]
    np.testing.assert_allclose(tox[:, others], raw[:, others], atol=1e-6)


@needs_onnx
def test_onnx_two_pass_matches_torch(two_pass: Path, tmp_path: Path) -> None:
    items = [{"text": "you idiot", "target": "Bus budget"}, {"text": LONG}]
    torch_tox = load_predictor(two_pass, backend="torch").score_arrays(items).toxicity
    onnx = load_predictor(two_pass, backend="onnx", cache_dir=tmp_path / "cache")
    assert onnx.comment_model is not None and onnx.comment_model.backend == "onnx"
    np.testing.assert_allclose(onnx.score_arrays(items).toxicity, torch_tox, atol=1e-4)


def test_a_folder_without_a_comment_model_scores_as_before(two_pass: Path, tmp_path: Path) -> None:
    single = tmp_path / "single"
    shutil.copytree(two_pass, single)
    shutil.rmtree(single / COMMENT_DIR)
    predictor = load_predictor(single, backend="torch")
    assert predictor.comment_model is None
    items = [{"text": "you idiot", "target": "Bus budget"}]
    np.testing.assert_allclose(
        predictor.score_arrays(items).toxicity,
        load_predictor(two_pass, backend="torch", comment_model=False).score_arrays(items).toxicity,
        atol=1e-6,
    )


def test_odd_texts_get_finite_scores_through_both_passes(two_pass: Path) -> None:
    texts = ["", "   ", "\x00\r\n\t", "🙂" * 300, "word " * 5000, "a\u200bb\ufeffc"]
    predictor = load_predictor(two_pass, backend="torch")
    stance, tox, _, _ = predictor.score_arrays([{"text": t, "target": "A title"} for t in texts])
    assert stance.shape[0] == tox.shape[0] == len(texts)
    assert np.isfinite(stance).all() and np.isfinite(tox).all()
    assert ((tox >= 0) & (tox <= 1)).all()


def test_a_two_pass_model_reads_toxicity_from_its_comment_model(span_folder: Path) -> None:
    """comment_scores on the loaded (outer) model gives the comment model's scores: it gave
    the stance model's own pair-pass head, with the comment model's label names (a benchmark
    measured the wrong head, and crashed once the comment model had a label more)."""
    outer = load_predictor(span_folder, backend="torch")
    assert outer.comment_model is not None
    texts = ["you are a fool", "a fine day for a walk"]
    got = outer.comment_scores(texts).toxicity
    assert got.shape == (2, len(outer.toxicity_labels))
    np.testing.assert_array_equal(got, outer.comment_model.comment_scores(texts).toxicity)


def test_a_two_pass_predictor_is_immutable_and_derives_with_its_comment_model(
    two_pass: Path,
) -> None:
    """Options are chosen at construction: setting an attribute raises, and with_options
    derives a predictor (its comment model too) that shares the loaded models and leaves
    the original as it was."""
    predictor = load_predictor(two_pass, backend="torch")
    comment = predictor.comment_model
    assert comment is not None and predictor.toxicity_labels == comment.toxicity_labels
    assert predictor.model_version.endswith("+" + comment.model_version.rsplit("-", 1)[-1])
    with pytest.raises(AttributeError, match=r"immutable.*'options'.*with_options"):
        predictor.options = PredictOptions(spans=False)
    with pytest.raises(AttributeError, match=r"immutable.*'calibration'"):
        comment.calibration = None
    passes: list[str] = []
    hooked = predictor.with_options(before_pass=lambda: passes.append("pass"), batch_size=1)
    assert hooked.comment_model is not None and hooked.comment_model is not comment
    assert hooked.model is predictor.model and hooked.comment_model.model is comment.model
    assert hooked.comment_model.options == hooked.options
    items = [{"text": "you idiot", "target": "Bus budget"}, {"text": "a calm remark"}]
    np.testing.assert_array_equal(
        hooked.score_arrays(items).toxicity, predictor.score_arrays(items).toxicity
    )
    assert len(passes) == 4  # two stance passes, two comment windows: batch_size 1 both
    predictor.score_arrays(items)
    assert len(passes) == 4 and predictor.options.before_pass is None
    with pytest.raises(ValueError, match="batch_size and chunk_size must be positive, not 0"):
        predictor.with_options(batch_size=0)
