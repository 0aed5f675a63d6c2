"""Scoring without torch: :class:`OnnxPredictor` over a cached ONNX export, and the cache.

The export comes from the cache (``$THREADGUARD_CACHE/onnx`` or ``~/.cache/threadguard/onnx``)
through an index keyed by a hash of the model folder's files and its base encoder's file
stats (:func:`folder_key`); the predictor then encodes with
:class:`~classifier.model.encoding.InputEncoder` over the Rust tokenizer and runs ONNX
Runtime. That is what brings a cold start down to a third of a second and the peak memory
to about 300 MB (docs/speed.md). The first load of a model exports it once, through torch
(:class:`~classifier.model.backends.OnnxRunner`, which names its files by
:func:`~classifier.model.backends.model_fingerprint`); a model whose base encoder is a Hub
id (not a local folder) is not indexed, so each load goes through torch to find its export.

This module imports neither torch nor transformers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from classifier._version import __version__
from classifier.model.constants import (
    CONFIG_FILE,
    EXPORT_FORMAT,
    Backend,
    default_cache_dir,
    model_dir,
    resolve_encoder,
)
from classifier.model.encoding import EncodedInput, InputEncoder
from classifier.model.onnx_session import OnnxSession, require_onnxruntime
from classifier.model.predictor import BatchOutput, BatchPredictor, probabilities
from classifier.model.replies import HeadSpec, reply_offsets_of, stance_heads_of
from classifier.model.versions import version_name

logger = logging.getLogger(__name__)


def _hash_files(digest: Any, folder: Path, names: Iterable[str]) -> None:
    for name in sorted(names):
        file = folder / name
        digest.update(f"{name}:{file.stat().st_size};".encode())
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)


def folder_key(path: Path, config: Mapping[str, Any], quantize: bool) -> str | None:
    """Key of an export of the model folder ``path`` (``config``: its CONFIG_FILE): the
    folder's files by content, a delta save's base encoder files by name, size and
    modification time (hashing its ~90 MB would double the start-up), the export format
    and the variant. None when the base encoder is not a local folder (a Hub id)."""
    digest = hashlib.sha256(f"threadguard export {EXPORT_FORMAT} int8={quantize};".encode())
    _hash_files(digest, path, (str(f.relative_to(path)) for f in path.rglob("*") if f.is_file()))
    if config.get("save_mode") == "delta":
        try:
            base = Path(resolve_encoder(str(config["model_config"]["encoder"]))).expanduser()
        except ImportError:  # the default encoder's package is missing: torch will say so
            return None
        if not base.is_dir():
            return None
        for file in sorted(f for f in base.iterdir() if f.is_file()):
            stat = file.stat()
            digest.update(f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:24]


class OnnxPredictor(BatchPredictor):
    """Scores with ONNX Runtime over a cached export, with neither torch nor transformers.

    Build one with :meth:`from_folder`. ``backend`` is ``"onnx"`` (float32) or
    ``"onnx-int8"``.
    """

    def __init__(
        self,
        session: OnnxSession,
        encoder: InputEncoder,
        *,
        stance_labels: Sequence[str],
        toxicity_labels: Sequence[str],
        model_version: str,
        backend: Backend,
        stance_heads: Mapping[str, HeadSpec] | None = None,
        reply_offsets: np.ndarray | None = None,
        batch_size: int = 32,
        max_batch_tokens: int | None = None,
        chunk_size: int = 4096,
        span_labels: Sequence[str] = (),
        constructive_labels: Sequence[str] = (),
    ) -> None:
        super().__init__(
            batch_size=batch_size, max_batch_tokens=max_batch_tokens, chunk_size=chunk_size
        )
        self.session = session
        self.span_labels = tuple(span_labels)
        self.constructive_labels = tuple(constructive_labels)
        self._encoder = encoder
        self.stance_labels = tuple(stance_labels)
        self.toxicity_labels = tuple(toxicity_labels)
        self.stance_heads = dict(
            stance_heads or stance_heads_of({"stance_labels": self.stance_labels})
        )
        self.model_version = model_version
        self.backend = backend
        self.reply_offsets = reply_offsets

    @property
    def input_encoder(self) -> InputEncoder:
        return self._encoder

    @classmethod
    def from_folder(
        cls,
        path: str | Path | None = None,
        *,
        backend: str = "onnx-int8",
        num_threads: int | None = None,
        cache_dir: str | Path | None = None,
        batch_size: int = 32,
        max_batch_tokens: int | None = None,
        chunk_size: int = 4096,
    ) -> OnnxPredictor:
        """Load the saved model at ``path`` (``None``: the shipped default) on ONNX Runtime.

        The export comes from the cache when this model folder (same files, same base
        encoder) was exported before; otherwise it is exported now, through torch, and
        indexed for the next load.
        """
        if backend not in ("onnx", "onnx-int8"):
            raise ValueError(f"OnnxPredictor runs 'onnx' or 'onnx-int8', not {backend!r}")
        folder = model_dir(path)
        require_onnxruntime()
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        quantize = backend == "onnx-int8"
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        key, entry = cached_export(folder, config, quantize, cache)
        if entry is None:
            entry = _export_folder(folder, quantize, cache, num_threads)
            if key is not None:
                _write_index(cache, key, entry)
        model_config = config["model_config"]
        session = OnnxSession(cache / entry["file"], num_threads)
        encoder = InputEncoder.from_folder(
            folder,
            int(model_config["max_length"]),
            min_target_tokens=int(model_config["min_target_tokens"]),
            comment_only=model_config.get("toxicity_input") == "comment",
            emoji_words=bool(model_config.get("emoji_words", False)),
            with_types="token_type_ids" in session.names,
        )
        name = version_name(path, config.get("training_config"))
        heads = stance_heads_of(model_config)
        return cls(
            session,
            encoder,
            stance_labels=model_config["stance_labels"],
            toxicity_labels=model_config["toxicity_labels"],
            stance_heads=heads,
            reply_offsets=reply_offsets_of(
                config.get("stance_offsets"), model_config["stance_labels"], heads
            ),
            model_version=f"{name}-{entry['version_digest']}",
            backend=cast(Backend, backend),
            span_labels=model_config.get("span_labels", ()),
            constructive_labels=model_config.get("constructive_labels", ()),
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            chunk_size=chunk_size,
        )

    def _run_batch(self, encoded: Sequence[EncodedInput]) -> BatchOutput:
        found = self.session.run(self._encoder.collate(encoded, return_tensors="np"))
        return probabilities({k: v.astype(np.float32) for k, v in found.items()})


def cached_export(
    folder: Path, config: Mapping[str, Any], quantize: bool, cache: Path
) -> tuple[str | None, dict[str, Any] | None]:
    """The export-index key of a model folder and its cached export entry (None: not yet)."""
    key = folder_key(folder, config, quantize)
    return key, _read_index(cache, key) if key is not None else None


def _index_path(cache: Path, key: str) -> Path:
    return cache / "index" / f"{key}.json"


def _read_index(cache: Path, key: str) -> dict[str, Any] | None:
    path = _index_path(cache, key)
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or not (cache / str(entry.get("file", ""))).is_file():
        return None  # the export was removed: export again
    return entry


def _write_index(cache: Path, key: str, entry: Mapping[str, Any]) -> None:
    path = _index_path(cache, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entry, indent=1), encoding="utf-8")
    tmp.replace(path)


def _export_folder(
    folder: Path, quantize: bool, cache: Path, num_threads: int | None
) -> dict[str, Any]:
    """Export the model folder through torch (:class:`classifier.model.backends.OnnxRunner`)."""
    from classifier.model.backends import OnnxRunner
    from classifier.model.torch_predictor import load_model
    from classifier.model.versions import version_digest

    logger.info("exporting %s to ONNX (once; later loads read the cache)", folder)
    model = load_model(folder)
    runner = OnnxRunner(model, num_threads=num_threads, cache_dir=cache, quantize=quantize)
    return {
        "file": str(runner.path.relative_to(cache)),
        "version_digest": version_digest(model),
        "source": str(folder.resolve()),
        "threadguard": __version__,
    }
