"""The torch-free runtime: the shared input encoder, OnnxPredictor and load_predictor.

OnnxPredictor must give what the torch ``onnx`` backend gives (same export, same
engine) and what the float32 torch reference gives within the ``onnx`` tolerance
of tests/test_backends.py; a second load must come from the export cache without
torch; a cached export must not be used for a model whose files changed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from classifier.model import constants, onnx_predictor
from classifier.model.config import ModelConfig
from classifier.model.encoding import InputEncoder
from classifier.model.loading import load_predictor
from classifier.model.network import ThreadguardModel
from classifier.model.onnx_predictor import OnnxPredictor
from classifier.model.predictor import BatchPredictor, PredictOptions
from classifier.model.torch_predictor import Predictor
from classifier.model.versions import compute_model_version
from classifier.scoring import ScoreRun
from tests.test_backends import SAMPLE, TOLERANCE, decisive, needs_onnx

TRIPLES = (
    [i["target"] for i in SAMPLE] + ["", " ", "x"],
    [i["context"] for i in SAMPLE] + ["", "ctx", ""],
    [i["text"] for i in SAMPLE] + ["", "a b", ""],
)


@pytest.mark.parametrize("encoder", ["tiny_encoder_dir", "tiny_roberta_dir"])
@pytest.mark.parametrize("comment_only", [False, True])
def test_encoder_from_files_matches_the_transformers_tokenizer(
    encoder: str, comment_only: bool, request: pytest.FixtureRequest
) -> None:
    folder: Path = request.getfixturevalue(encoder)
    hf = AutoTokenizer.from_pretrained(str(folder))
    kw = {"min_target_tokens": 8, "comment_only": comment_only}
    via_hf = InputEncoder(hf, 40, **kw)  # type: ignore[arg-type]
    via_files = InputEncoder.from_folder(folder, 40, **kw)  # type: ignore[arg-type]
    assert via_files.with_types == via_hf.with_types == (encoder == "tiny_encoder_dir")
    assert (via_files.pad_token_id, via_files._sep) == (hf.pad_token_id, [hf.sep_token_id])
    a, b = via_hf.encode(*TRIPLES), via_files.encode(*TRIPLES)
    assert [astuple(e) for e in a] == [astuple(e) for e in b]
    assert max(len(e) for e in a) == 40  # long comments were cut to the budget
    pt, np_batch = via_hf.collate(a), via_files.collate(b, return_tensors="np")
    assert set(pt) == set(np_batch)
    for key, tensor in pt.items():
        assert tensor.dtype == (torch.bool if key == "comment_mask" else torch.int64)
        assert (tensor.numpy() == np_batch[key]).all(), key


def test_encoder_rejects_what_it_cannot_use(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a fast tokenizer"):
        InputEncoder(object())
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json"):
        InputEncoder.from_folder(tmp_path)
    with pytest.raises(ValueError, match="return_tensors"):
        InputEncoder.from_folder(tiny_encoder_dir).collate(
            InputEncoder.from_folder(tiny_encoder_dir).encode(["t"], None, ["c"]), "tf"
        )


@pytest.fixture
def saved(tiny_config: ModelConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A saved tiny model with spread-out heads; exports go to a fresh cache."""
    monkeypatch.setenv(constants.CACHE_ENV, str(tmp_path / "cache"))
    torch.manual_seed(0)
    return decisive(ThreadguardModel.from_encoder(tiny_config)).save_pretrained(tmp_path / "m")


@needs_onnx
@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_onnx_predictor_matches_the_torch_paths(saved: Path, backend: str) -> None:
    model = ThreadguardModel.from_pretrained(saved)
    reference = Predictor(model, options=PredictOptions(batch_size=8))
    same_engine = Predictor(model, backend=backend, options=PredictOptions(batch_size=8))
    lean = OnnxPredictor.from_folder(saved, backend=backend, options=PredictOptions(batch_size=8))
    assert (lean.stance_labels, lean.toxicity_labels) == (
        reference.stance_labels,
        reference.toxicity_labels,
    )
    assert lean.model_version == compute_model_version(model, saved)
    stance, tox, _, _ = lean.score_arrays(SAMPLE)
    engine_stance, engine_tox, _, _ = same_engine.score_arrays(SAMPLE)
    assert np.abs(stance - engine_stance).max() < 1e-5  # same file, same engine
    assert np.abs(tox - engine_tox).max() < 1e-5
    ref_stance, ref_tox, _, _ = reference.score_arrays(SAMPLE)
    assert np.abs(stance - ref_stance).max() <= TOLERANCE[backend]
    assert np.abs(tox - ref_tox).max() <= TOLERANCE[backend]
    (one,) = lean.predict(SAMPLE[3:4])
    alone = [one["stance"]["scores"][label] for label in lean.stance_labels]
    assert alone == pytest.approx(stance[3].tolist(), abs=max(1e-5, TOLERANCE[backend]))  # alone


@needs_onnx
def test_every_runtime_spells_emoji_out_when_the_model_says_so(
    tiny_config: ModelConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(constants.CACHE_ENV, str(tmp_path / "cache"))
    torch.manual_seed(0)
    config = tiny_config.replace(emoji_words=True)
    folder = decisive(ThreadguardModel.from_encoder(config)).save_pretrained(tmp_path / "m")
    model = ThreadguardModel.from_pretrained(folder)
    lean = OnnxPredictor.from_folder(folder, backend="onnx", options=PredictOptions(batch_size=8))
    assert model.config.emoji_words and model.input_encoder.emoji_words
    assert lean.input_encoder.emoji_words
    items = [{"text": "you 🐷", "target": "the 🔥 article"}, {"text": "you pig face"}]
    tox = Predictor(model, options=PredictOptions(batch_size=8)).score_arrays(items).toxicity
    lean_tox = lean.score_arrays(items).toxicity
    assert np.abs(tox - lean_tox).max() <= TOLERANCE["onnx"]
    spelled = lean.score_arrays([{"text": "you pig face", "target": "the fire article"}]).toxicity
    assert np.abs(lean_tox[0] - spelled[0]).max() < 1e-5  # the model read the words


@needs_onnx
def test_second_load_reads_the_cache_and_a_changed_model_is_exported_again(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = OnnxPredictor.from_folder(saved, backend="onnx")
    before = first.score_arrays(SAMPLE[:5])

    def no_export(*args: object) -> object:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_predictor, "_export_folder", no_export)
    again = OnnxPredictor.from_folder(saved, backend="onnx")
    assert again.session.path == first.session.path
    # other heads: another key, so the stale export is not used
    model = ThreadguardModel.from_pretrained(saved)
    with torch.no_grad():
        model.toxicity_head.bias += 1.0
    model.save_pretrained(saved)
    with pytest.raises(AssertionError, match="exported again"):
        OnnxPredictor.from_folder(saved, backend="onnx")
    monkeypatch.undo()
    monkeypatch.setenv(constants.CACHE_ENV, str(first.session.path.parent.parent))
    changed = OnnxPredictor.from_folder(saved, backend="onnx")
    assert changed.session.path != first.session.path
    assert not np.allclose(changed.score_arrays(SAMPLE[:5]).toxicity, before[1])


@needs_onnx
def test_lean_load_imports_neither_torch_nor_transformers(saved: Path) -> None:
    OnnxPredictor.from_folder(saved, backend="onnx-int8")  # export and cache once
    code = (
        "import sys, json; from classifier.model.loading import load_predictor; "
        f"p = load_predictor({str(saved)!r}, backend='onnx-int8'); "
        "(r,) = p.predict([{'text': 'is this true', 'target': 'the article'}]); "
        "print(json.dumps([sorted(m for m in ('torch', 'transformers') if m in sys.modules), "
        "r['stance']['label'], p.backend]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported, label, backend = json.loads(done.stdout.strip().splitlines()[-1])
    assert imported == []
    config = json.loads((saved / constants.CONFIG_FILE).read_text(encoding="utf-8"))
    assert label in config["model_config"]["stance_labels"]
    assert backend == "onnx-int8"


def test_load_predictor_picks_the_runtime(saved: Path) -> None:
    torch_predictor = load_predictor(saved, backend="torch")
    assert isinstance(torch_predictor, Predictor)
    assert torch_predictor.model_version.startswith("m-")
    with pytest.raises(ValueError, match="unknown backend"):
        load_predictor(saved, backend="tensorrt")
    with pytest.raises(constants.BackendUnavailableError, match="CPU"):
        load_predictor(saved, backend="onnx", device="cuda")
    with pytest.raises(FileNotFoundError, match="no threadguard model"):
        load_predictor(saved / "missing")
    if constants.onnx_available():
        lean = load_predictor(saved, backend="onnx")
        assert isinstance(lean, OnnxPredictor) and isinstance(lean, BatchPredictor)
        assert lean.model_version == torch_predictor.model_version


@needs_onnx
def test_score_rows_name_the_backend_and_the_same_version(saved: Path, tmp_path: Path) -> None:
    source = tmp_path / "flat.jsonl"
    comments = [
        {"thread_id": "t", "comment_id": "1", "text": "Is this true?", "article_title": "Dams"},
        {"thread_id": "t", "comment_id": "2", "parent_id": "1", "text": "yes it is"},
    ]
    source.write_text("".join(json.dumps(c) + "\n" for c in comments), encoding="utf-8")
    rows = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / f"{backend}.jsonl"
        ScoreRun.create(saved, backend=backend).run([str(source)], out, "jsonl")
        rows[backend] = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["model"]["backend"] for r in rows["onnx"]] == ["onnx", "onnx"]
    assert rows["onnx"][0]["model"]["version"] == rows["torch"][0]["model"]["version"]
    for a, b in zip(rows["torch"], rows["onnx"], strict=True):
        assert a["stance"]["label"] == b["stance"]["label"]
        assert a["stance"]["target"] == b["stance"]["target"]
        assert max(abs(a["toxicity"][k] - b["toxicity"][k]) for k in a["toxicity"]) <= 1e-4


def test_a_delta_model_on_a_hub_encoder_is_keyed_from_the_local_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A saved delta model whose base encoder is a Hub id gets an export key (so later loads
    skip torch) once that id is in the local Hugging Face cache; never a download."""
    import huggingface_hub.constants

    hub = tmp_path / "hub"
    repo = hub / "models--acme--tiny-encoder"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(b"weights")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "heads.safetensors").write_bytes(b"heads")

    def config(encoder: str) -> dict[str, object]:
        return {"save_mode": "delta", "model_config": {"encoder": encoder}}

    key = onnx_predictor.export_key(folder, config("acme/tiny-encoder"))
    assert key is not None
    assert onnx_predictor.export_key(folder, config("acme/not-downloaded")) is None
    (snapshot / "model.safetensors").write_bytes(b"other weights")  # the base encoder changed
    assert onnx_predictor.export_key(folder, config("acme/tiny-encoder")) not in (None, key)


@needs_onnx
def test_a_model_without_an_export_key_is_exported_afresh_and_nothing_cached(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = OnnxPredictor.from_folder(saved, backend="onnx")
    keyed = first.score_arrays(SAMPLE[:5])
    cache = tmp_path / "cache-for-keyless"
    monkeypatch.setattr(onnx_predictor, "export_key", lambda path, config, cache=None: None)
    lean = OnnxPredictor.from_folder(saved, backend="onnx", cache_dir=cache)
    assert not cache.exists()  # nothing written: no key to find it by
    again = lean.score_arrays(SAMPLE[:5])
    assert np.array_equal(again[0], keyed[0]) and np.array_equal(again[1], keyed[1])
    assert lean.model_version == first.model_version
