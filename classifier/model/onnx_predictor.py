"""Scoring without torch: :class:`OnnxPredictor` over a cached ONNX export, and the cache.

The cache (``$THREADGUARD_CACHE/onnx`` or ``~/.cache/threadguard/onnx``) holds each saved
model folder's export under one key, a hash of the folder's files and its base encoder's
files by content (:func:`export_key`; the base's hashes are remembered in ``hashes.json``
by path, size and modification time, so a load does not read its ~90 MB again):
``KEY.json`` (what the export is of, and the model's version digest; touched on every
load), ``KEY.onnx``, ``KEY.fused.onnx`` and ``KEY.fused.int8.onnx``, about 175 MB a key
(the shipped model has two). An export prunes the cache (:func:`prune_cache`): the
:data:`KEEP_EXPORTS` keys used last stay, and of those only the ones used within
:data:`KEEP_DAYS` days. The
predictor encodes with :class:`~classifier.model.encoding.InputEncoder` over the Rust
tokenizer and runs ONNX Runtime. That is what brings a cold start down to a third of a
second and the peak memory to about 300 MB (docs/speed.md). The first load of a model
exports it once, through torch (:class:`~classifier.model.backends.OnnxRunner`); a model
whose base encoder is a Hub id that is not in the local Hugging Face cache has no key, so
each load exports it again.

This module imports neither torch nor transformers.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from classifier._version import __version__
from classifier.model.constants import (
    CONFIG_FILE,
    EXPORT_FORMAT,
    Backend,
    cache_folder,
    model_dir,
    resolve_encoder,
)
from classifier.model.encoding import EncodedInput, InputEncoder
from classifier.model.onnx_session import OnnxSession, require_onnxruntime
from classifier.model.predictor import (
    DEFAULT_OPTIONS,
    BatchOutput,
    BatchPredictor,
    PredictOptions,
    probabilities,
)
from classifier.model.replies import reply_offsets_of, stance_heads_of
from classifier.model.spans import DEFAULT_SPAN_THRESHOLD
from classifier.model.versions import version_name

logger = logging.getLogger(__name__)


def _hash_files(digest: Any, folder: Path, names: Iterable[str]) -> None:
    for name in sorted(names):
        file = folder / name
        digest.update(f"{name}:{file.stat().st_size};".encode())
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)


#: an export keeps the newest keys of the cache (by last use), at most this many...
KEEP_EXPORTS = 6
#: ...and of those, the ones used within this many days
KEEP_DAYS = 30
_KEY = re.compile(r"[0-9a-f]{24}")
_HASHES = "hashes.json"


def export_key(path: Path, config: Mapping[str, Any], cache: Path | None = None) -> str | None:
    """The export-cache key of the model folder ``path`` (``config``: its CONFIG_FILE): the
    folder's files by content, a delta save's base encoder files by name, size and content
    (not by path or modification time: a fresh venv's copy of the same encoder has the same
    key), the export format and the torch that exports (so upgrading torch exports once
    more). The base's content hashes are remembered in ``cache`` (when given) by path, size
    and modification time: hashing its ~90 MB on every load would double the start-up.
    None when the base encoder is neither a local folder nor a Hub id in the local Hugging
    Face cache."""
    digest = hashlib.sha256(f"threadguard export {EXPORT_FORMAT};".encode())
    digest.update(f"torch {_distribution_version('torch')};".encode())
    _hash_files(digest, path, (str(f.relative_to(path)) for f in path.rglob("*") if f.is_file()))
    if config.get("save_mode") == "delta":
        base = _local_encoder(str(config["model_config"]["encoder"]))
        if base is None:
            return None
        memo = _HashMemo(cache / _HASHES if cache is not None else None)
        for file in sorted(f for f in base.iterdir() if f.is_file()):
            digest.update(f"{file.name}:{file.stat().st_size}:{memo.sha256(file)};".encode())
        memo.save()
    return digest.hexdigest()[:24]


class _HashMemo:
    """Content hashes of files by resolved path, size and modification time, in a JSON file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, list[Any]] = {}
        self.changed = False
        if path is not None:
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                self.entries = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                pass

    def sha256(self, file: Path) -> str:
        stat = file.stat()
        name = str(file.resolve())
        known = self.entries.get(name)
        if isinstance(known, list) and known[:2] == [stat.st_size, stat.st_mtime_ns]:
            return str(known[2])
        digest = hashlib.sha256()
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        self.entries[name] = [stat.st_size, stat.st_mtime_ns, digest.hexdigest()]
        self.changed = True
        return digest.hexdigest()

    def save(self) -> None:
        if self.path is None or not self.changed:
            return
        # the files still there only: an encoder removed with its venv is forgotten
        entries = {k: v for k, v in self.entries.items() if Path(k).is_file()}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(entries, indent=0), encoding="utf-8")
            tmp.replace(self.path)
        except OSError as exc:  # a read-only cache: the hashes are made again next time
            logger.debug("could not save %s: %s", self.path, exc)


def prune_cache(cache: Path, keep: int = KEEP_EXPORTS, days: float = KEEP_DAYS) -> list[str]:
    """Remove the cache's exports but the ``keep`` used last (a load touches ``KEY.json``),
    and those not used for ``days`` days; returns the keys removed."""
    files: dict[str, list[Path]] = {}
    for file in cache.glob("*"):
        key = file.name.split(".", 1)[0]
        if _KEY.fullmatch(key) and file.is_file():
            files.setdefault(key, []).append(file)

    def last_use(key: str) -> float:
        entry = cache / f"{key}.json"
        paths = [entry] if entry.is_file() else files[key]
        return max(p.stat().st_mtime for p in paths)

    newest = sorted(files, key=last_use, reverse=True)
    cutoff = time.time() - days * 86400
    removed = [k for i, k in enumerate(newest) if i >= keep or last_use(k) < cutoff]
    for key in removed:
        for file in files[key]:
            file.unlink(missing_ok=True)
    if removed:
        logger.info("removed %d old export(s) from %s", len(removed), cache)
    return removed


def _distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def _local_encoder(ref: str) -> Path | None:
    """The local folder of a base encoder: the default's package, a path, or a Hub id's
    snapshot in the Hugging Face cache (looked up, never downloaded); None if there is none."""
    try:
        base = Path(resolve_encoder(ref)).expanduser()
    except ImportError:  # the default encoder's package is missing: torch will say so
        return None
    if base.is_dir():
        return base
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(ref, local_files_only=True))
    except Exception:  # not a Hub id, or not downloaded yet: no key, export afresh
        return None


class OnnxPredictor(BatchPredictor):
    """Scores with ONNX Runtime over a cached export, with neither torch nor transformers.

    Build one with :meth:`from_folder`; ``session`` and ``encoder`` run it, and the other
    arguments are :class:`~classifier.model.predictor.BatchPredictor`'s (``backend`` is
    ``"onnx"``, float32, or ``"onnx-int8"``).
    """

    def __init__(self, session: OnnxSession, encoder: InputEncoder, **model: Any) -> None:
        self.session = session
        self._encoder = encoder
        super().__init__(**model)

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
        calibration: Mapping[str, tuple[float, float]] | None = None,
        span_threshold: float = DEFAULT_SPAN_THRESHOLD,
        comment_model: BatchPredictor | None = None,
        options: PredictOptions = DEFAULT_OPTIONS,
        spinning: bool = True,
    ) -> OnnxPredictor:
        """Load the saved model at ``path`` (``None``: the shipped default) on ONNX Runtime.

        The export comes from the cache when this model folder (same files, same base
        encoder) was exported before; otherwise it is exported now, through torch, and
        cached for the next load. ``calibration``, ``span_threshold``, ``comment_model``
        and ``options``: see :class:`~classifier.model.predictor.BatchPredictor`.
        ``spinning=False`` stops the session's idle threads from spinning: a predictor that
        runs two sessions in turn (a two-pass model) would otherwise have each one's
        spinning threads take the cores from the other.
        """
        if backend not in ("onnx", "onnx-int8"):
            raise ValueError(f"OnnxPredictor runs 'onnx' or 'onnx-int8', not {backend!r}")
        folder = model_dir(path)
        require_onnxruntime()
        cache = cache_folder(cache_dir)
        quantize = backend == "onnx-int8"
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        key, entry = cached_export(folder, config, quantize, cache)
        if entry is None:
            entry, session = _export_folder(folder, key, quantize, cache, num_threads, spinning)
        else:  # an entry comes with its key
            export = _export_file(cache, cast(str, key), quantize)
            session = OnnxSession(export, num_threads, spinning=spinning)
        model_config = config["model_config"]
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
            backend=cast(Backend, backend),
            model_version=f"{name}-{entry['version_digest']}",
            stance_labels=model_config["stance_labels"],
            toxicity_labels=model_config["toxicity_labels"],
            stance_heads=heads,
            reply_offsets=reply_offsets_of(
                config.get("stance_offsets"), model_config["stance_labels"], heads
            ),
            span_labels=model_config.get("span_labels", ()),
            constructive_labels=model_config.get("constructive_labels", ()),
            calibration=calibration,
            span_threshold=span_threshold,
            comment_model=comment_model,
            options=options,
        )

    def _run_batch(self, encoded: Sequence[EncodedInput]) -> BatchOutput:
        found = self.session.run(self._encoder.collate(encoded, return_tensors="np"))
        return probabilities({k: v.astype(np.float32) for k, v in found.items()})


def cached_export(
    folder: Path, config: Mapping[str, Any], quantize: bool, cache: Path
) -> tuple[str | None, dict[str, Any] | None]:
    """A model folder's export key and its cache entry (None: no export of it yet)."""
    key = export_key(folder, config, cache)
    if key is None:
        return None, None
    try:
        entry = json.loads((cache / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return key, None
    if not isinstance(entry, dict) or not _export_file(cache, key, quantize).is_file():
        return key, None  # the export was removed, or this variant not made yet
    with contextlib.suppress(OSError):
        os.utime(cache / f"{key}.json")  # its last use, for prune_cache
    return key, entry


def _export_file(cache: Path, key: str, quantize: bool) -> Path:
    """The cached file a backend runs (as :class:`~classifier.model.backends.OnnxRunner`
    names them)."""
    return cache / (f"{key}.fused.int8.onnx" if quantize else f"{key}.fused.onnx")


def _export_folder(
    folder: Path,
    key: str | None,
    quantize: bool,
    cache: Path,
    num_threads: int | None,
    spinning: bool = True,
) -> tuple[dict[str, Any], OnnxSession]:
    """Export the model folder through torch (:class:`classifier.model.backends.OnnxRunner`),
    under its key in the cache when it has one, and its entry and session."""
    from classifier.model.backends import OnnxRunner
    from classifier.model.torch_predictor import load_model
    from classifier.model.versions import version_digest

    logger.info("exporting %s to ONNX (once; later loads read the cache)", folder)
    model = load_model(folder)
    stem = cache / key if key is not None else None
    # the threads OnnxSession takes by default, not the torch-side runner's default
    threads = num_threads or os.cpu_count() or 1
    runner = OnnxRunner(model, stem=stem, num_threads=threads, quantize=quantize, spinning=spinning)
    entry = {
        "version_digest": version_digest(model),
        "source": str(folder.resolve()),
        "threadguard": __version__,
    }
    if key is not None:
        path = cache / f"{key}.json"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entry, indent=1), encoding="utf-8")
        tmp.replace(path)
        try:
            prune_cache(cache)
        except OSError as exc:  # another process pruning at the same time
            logger.debug("could not prune %s: %s", cache, exc)
    return entry, runner.session
