"""Tests of classifier.model.torch_predictor on a tiny random model."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from classifier.model import constants
from classifier.model.config import ModelConfig
from classifier.model.constants import NoDefaultModelError
from classifier.model.network import ThreadguardModel
from classifier.model.predictor import PredictOptions
from classifier.model.torch_predictor import Predictor, load_model

ITEMS = [
    {"text": "you idiot", "target": "the war is over", "context": "news"},
    {"text": " ".join(["really"] * 80), "target": "police report the attack"},
    {"text": "where is the proof?", "target": ""},
    {"text": "thanks", "target": " ".join(["vote"] * 300), "context": None},
    {"text": "buy cheap stuff now, click here"},
]


def test_outputs_are_keyed_by_name(tiny_model: ThreadguardModel) -> None:
    predictions = Predictor(tiny_model).predict(ITEMS)
    assert len(predictions) == len(ITEMS)
    for prediction in predictions:
        scores = prediction["stance"]["scores"]
        assert tuple(scores) == tiny_model.stance_labels
        assert prediction["stance"]["label"] == max(scores, key=scores.__getitem__)
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert tuple(prediction["toxicity"]) == tiny_model.toxicity_labels
        assert all(0.0 <= p <= 1.0 for p in prediction["toxicity"].values())


@pytest.mark.parametrize(
    ("batch_size", "max_batch_tokens", "chunk_size"),
    [(2, None, 4096), (1, None, 4096), (32, 100, 4096), (2, None, 3)],
)
def test_input_order_survives_length_sorting(
    tiny_model: ThreadguardModel, batch_size: int, max_batch_tokens: int | None, chunk_size: int
) -> None:
    one_by_one = [Predictor(tiny_model).predict([item])[0] for item in ITEMS]
    options = PredictOptions(
        batch_size=batch_size, max_batch_tokens=max_batch_tokens, chunk_size=chunk_size
    )
    predictor = Predictor(tiny_model, options=options)
    for got, expected in zip(predictor.predict(ITEMS), one_by_one, strict=True):
        assert got["stance"]["label"] == expected["stance"]["label"]
        for name, p in expected["stance"]["scores"].items():
            assert got["stance"]["scores"][name] == pytest.approx(p, abs=1e-5)
        for name, p in expected["toxicity"].items():
            assert got["toxicity"][name] == pytest.approx(p, abs=1e-5)


def test_batches_respect_limits(tiny_model: ThreadguardModel) -> None:
    predictor = Predictor(tiny_model, options=PredictOptions(batch_size=3, max_batch_tokens=70))
    encoded = tiny_model.input_encoder.encode(
        [i.get("target") or "" for i in ITEMS], None, [i["text"] for i in ITEMS]
    )
    batches = predictor._batches(encoded)
    assert sorted(i for b in batches for i in b) == list(range(len(ITEMS)))
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * max(len(encoded[i]) for i in batch) <= 70


def test_only_learned_labels_are_output(tiny_encoder_dir: Path) -> None:
    config = ModelConfig(
        encoder=str(tiny_encoder_dir), stance_labels=("support", "deny"), toxicity_labels=("spam",)
    )
    (prediction,) = Predictor(ThreadguardModel.from_encoder(config)).predict(ITEMS[:1])
    assert set(prediction["stance"]["scores"]) == {"support", "deny"}
    assert set(prediction["toxicity"]) == {"spam"}


def test_items_may_be_objects_and_empty_input_is_fine(tiny_model: ThreadguardModel) -> None:
    predictor = Predictor(tiny_model)
    assert predictor.predict([]) == []
    by_object = predictor.predict([SimpleNamespace(text="you idiot", target="the war is over")])
    (by_mapping,) = predictor.predict([{"text": "you idiot", "target": "the war is over"}])
    assert by_object[0]["stance"]["scores"] == pytest.approx(by_mapping["stance"]["scores"])


def test_item_without_text_is_rejected(tiny_model: ThreadguardModel) -> None:
    with pytest.raises(ValueError, match="text"):
        Predictor(tiny_model).predict([{"target": "the war"}])


def test_num_threads_is_applied(tiny_model: ThreadguardModel) -> None:
    before = torch.get_num_threads()
    try:
        Predictor(tiny_model, num_threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_load_model(
    tiny_model: ThreadguardModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(constants, "DEFAULT_MODEL_DIR", tmp_path / "not-installed")
    with pytest.raises(NoDefaultModelError, match="no default"):
        load_model(None)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing")
    path = tiny_model.save_pretrained(tmp_path / "model")
    loaded = load_model(path)
    assert Predictor(loaded).predict(ITEMS) == Predictor(tiny_model).predict(ITEMS)
    monkeypatch.setattr(constants, "DEFAULT_MODEL_DIR", path)  # as if shipped in the package
    assert Predictor(load_model()).predict(ITEMS) == Predictor(tiny_model).predict(ITEMS)


def test_loading_and_scoring_raise_no_deprecation_from_transformers(
    tiny_model: ThreadguardModel, tmp_path: Path
) -> None:
    """Issue 39: transformers' FutureWarnings reached the user on `threadguard score`. A
    load through transformers (tokenizer, encoder, config) and a scoring pass, with every
    FutureWarning and DeprecationWarning recorded: none may come from transformers, nor
    from our code calling it (a warning's stack level may name either)."""
    path = tiny_model.save_pretrained(tmp_path / "model")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictions = Predictor(load_model(path)).predict(ITEMS)
    assert len(predictions) == len(ITEMS)
    ours = [
        f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}"
        for w in caught
        if issubclass(w.category, (FutureWarning, DeprecationWarning))
        and any(part in Path(w.filename).parts for part in ("transformers", "classifier"))
    ]
    assert ours == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(tiny_model: ThreadguardModel) -> None:
    cpu = Predictor(tiny_model).predict(ITEMS)
    gpu = Predictor(tiny_model, device="cuda").predict(ITEMS)
    for a, b in zip(cpu, gpu, strict=True):
        assert a["toxicity"] == pytest.approx(b["toxicity"], abs=1e-4)
