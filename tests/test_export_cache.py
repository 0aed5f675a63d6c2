"""The ONNX export cache: keyed by content (a fresh venv's copy of the same encoder hits the
same export), its hashes remembered cheaply, and old exports pruned."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from classifier.model import onnx_predictor


def delta_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base: Path) -> Path:
    monkeypatch.setattr(onnx_predictor, "_local_encoder", lambda ref: Path(ref))
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / "heads.safetensors").write_bytes(b"heads")
    return folder


def encoder(folder: Path, weights: bytes = b"weights") -> Path:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "config.json").write_text("{}")
    return folder


def config(base: Path) -> dict[str, object]:
    return {"save_mode": "delta", "model_config": {"encoder": str(base)}}


def test_the_key_is_the_encoders_content_not_its_path_or_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It held the base encoder files' modification times (and paths): every fresh venv
    exported again and left another 345 MB behind."""
    first = encoder(tmp_path / "venv1" / "encoder")
    folder = delta_model(tmp_path, monkeypatch, first)
    cache = tmp_path / "cache"
    key = onnx_predictor.export_key(folder, config(first), cache)
    assert key is not None
    # a fresh venv: the same files elsewhere, written later
    time.sleep(0.01)
    second = tmp_path / "venv2" / "encoder"
    shutil.copytree(first, second)
    os.utime(second / "model.safetensors", (time.time() + 60, time.time() + 60))
    assert onnx_predictor.export_key(folder, config(second), cache) == key
    assert onnx_predictor.export_key(folder, config(second)) == key  # without the memo too
    # other weights: another key
    (second / "model.safetensors").write_bytes(b"other weights")
    assert onnx_predictor.export_key(folder, config(second), cache) not in (None, key)


def test_the_encoders_hashes_are_remembered_by_size_and_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = encoder(tmp_path / "encoder")
    folder = delta_model(tmp_path, monkeypatch, base)
    cache = tmp_path / "cache"
    key = onnx_predictor.export_key(folder, config(base), cache)
    assert (cache / "hashes.json").is_file()
    read: list[Path] = []
    opened = Path.open

    def spy(self: Path, *args: object, **kwargs: object) -> object:
        if self.parent == base:
            read.append(self)
        return opened(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", spy)
    assert onnx_predictor.export_key(folder, config(base), cache) == key
    assert read == []  # the memo answered: the encoder was not read again
    (base / "model.safetensors").write_bytes(b"retrained")
    read.clear()
    assert onnx_predictor.export_key(folder, config(base), cache) != key
    assert read == [base / "model.safetensors"]  # only the file that changed


def test_pruning_keeps_the_exports_used_last(tmp_path: Path) -> None:
    cache = tmp_path / "onnx"
    cache.mkdir()
    now = time.time()
    keys = [f"{i:024x}" for i in range(9)]
    for age, key in enumerate(keys):  # keys[0] used last
        for suffix in (".json", ".onnx", ".fused.onnx"):
            (cache / f"{key}{suffix}").write_bytes(b"x")
            os.utime(cache / f"{key}{suffix}", (now - age * 3600, now - age * 3600))
    (cache / "hashes.json").write_text("{}")
    # an old export used an hour ago is kept; one unused for 40 days goes
    os.utime(cache / f"{keys[1]}.json", (now - 40 * 86400, now - 40 * 86400))
    removed = onnx_predictor.prune_cache(cache, keep=6, days=30)
    assert sorted(removed) == sorted([keys[1], *keys[7:]])
    left = {p.name.split(".")[0] for p in cache.iterdir()}
    assert left == {keys[0], *keys[2:7], "hashes"}
