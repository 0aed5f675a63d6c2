"""Loading a predictor: the one way the CLI, the hook, the Python API and the benchmarks
get one for a saved model folder and a backend.

:func:`load_predictor` picks the torch :class:`~classifier.model.torch_predictor.Predictor`
(``torch``, ``int8``) or the torch-free
:class:`~classifier.model.onnx_predictor.OnnxPredictor` (``onnx``, ``onnx-int8``) and builds
it whole: with the folder's comment model when it has one, and the calibration and the span
threshold saved with each model. The torch side is imported only when it is chosen.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from classifier.model.constants import (
    COMMENT_DIR,
    CONFIG_FILE,
    Backend,
    BackendUnavailableError,
    cache_folder,
    model_dir,
    resolve_backend,
)
from classifier.model.one_pass import is_one_pass, load_one_pass
from classifier.model.onnx_predictor import OnnxPredictor, cached_export
from classifier.model.predictor import DEFAULT_OPTIONS, BatchPredictor, PredictOptions
from classifier.model.spans import DEFAULT_SPAN_THRESHOLD


def load_predictor(
    path: str | Path | None = None,
    *,
    backend: str = "auto",
    device: str = "cpu",
    num_threads: int | None = None,
    cache_dir: str | Path | None = None,
    comment_model: bool = True,
    calibrated: bool = True,
    options: PredictOptions = DEFAULT_OPTIONS,
) -> BatchPredictor:
    """A predictor for the saved model at ``path`` (``None``: the shipped default), built
    whole: it is not changed after (:meth:`BatchPredictor.with_options` derives one with
    other ``options``).

    A one-pass model folder (a stance head beside its :data:`COMMENT_DIR`, see
    :mod:`classifier.model.one_pass`) gives a
    :class:`~classifier.model.one_pass.OnePassPredictor`: one encoder pass per comment.
    A two-pass model folder with a :data:`COMMENT_DIR` subfolder scores toxicity with that comment
    model (the ``comment_model`` of :class:`BatchPredictor`); ``comment_model=False``
    scores with the outer model's own toxicity head instead (how v0.3.1 scored, for
    comparison). Each folder's saved calibration (``calibrated=False``: none, as
    ``threadguard calibrate`` fits it) and span threshold apply to its own scores.

    ``backend`` (``auto``: :func:`resolve_backend` for ``device``) picks the runtime:
    the torch :class:`~classifier.model.torch_predictor.Predictor` for ``torch`` and ``int8``,
    :class:`OnnxPredictor` (no torch import once exported) for ``onnx`` and ``onnx-int8``.
    """
    chosen = resolve_backend(backend, device)
    folder = model_dir(path)
    load = functools.partial(
        _load_one,
        backend=chosen,
        device=device,
        num_threads=num_threads,
        cache_dir=cache_dir,
        calibrated=calibrated,
        options=options,
    )
    if is_one_pass(folder):
        if not comment_model:
            raise ValueError(
                f"{folder} is a one-pass model: its comment model is its encoder, it cannot "
                "score without it (comment_model=False is for two-pass models)"
            )
        encoder = load(folder / COMMENT_DIR)
        return load_one_pass(folder, encoder, backend=chosen, cache_dir=cache_dir, options=options)
    comment = None
    if comment_model and (folder / COMMENT_DIR / CONFIG_FILE).is_file():
        # two sessions run in turn: idle threads that spin would take the cores from the
        # other's run (single-comment p50 72 -> 42 ms, throughput unchanged: docs/speed.md)
        load = functools.partial(load, spinning=False)
        comment = load(folder / COMMENT_DIR)
    return load(path if path is not None else folder, comment_model=comment)


def exports_pending(
    path: str | Path | None, backend: str = "auto", cache_dir: str | Path | None = None
) -> list[Path]:
    """The model folders (the model's, its comment model's) that loading ``path`` with
    ``backend`` on the CPU would export to ONNX first, because the cache has no export of
    them yet; empty for a torch backend. Lets a command say why its first run is slow."""
    chosen = resolve_backend(backend, "cpu")
    if chosen not in ("onnx", "onnx-int8"):
        return []
    folder = model_dir(path)
    cache = cache_folder(cache_dir)
    pending = []
    for candidate in (folder, folder / COMMENT_DIR):
        if not (candidate / CONFIG_FILE).is_file():
            continue
        config = json.loads((candidate / CONFIG_FILE).read_text(encoding="utf-8"))
        if cached_export(candidate, config, chosen == "onnx-int8", cache)[1] is None:
            pending.append(candidate)
    return pending


def calibration_of(folder: Path) -> dict[str, tuple[float, float]] | None:
    """The toxicity calibration saved in a model folder's config, if any."""
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    found = config.get("calibration")
    if not found:
        return None
    return {name: (float(a), float(b)) for name, (a, b) in found["labels"].items()}


def _load_one(
    path: str | Path,
    *,
    backend: Backend,
    device: str,
    num_threads: int | None,
    cache_dir: str | Path | None,
    calibrated: bool,
    options: PredictOptions,
    comment_model: BatchPredictor | None = None,
    spinning: bool = True,
) -> BatchPredictor:
    """One model folder's predictor, with ``comment_model`` (if any), and the toxicity
    calibration (:func:`calibration_of`) and span threshold saved in that folder."""
    folder = model_dir(path)
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    saved: dict[str, Any] = {
        "calibration": calibration_of(folder) if calibrated else None,
        "span_threshold": float(config.get("span_threshold", DEFAULT_SPAN_THRESHOLD)),
        "comment_model": comment_model,
        "options": options,
    }
    if backend in ("onnx", "onnx-int8"):
        if str(device).split(":")[0] != "cpu":
            raise BackendUnavailableError(
                f"backend {backend!r} runs on the CPU; use backend='torch' on {device}"
            )
        return OnnxPredictor.from_folder(
            path,
            backend=backend,
            num_threads=num_threads,
            cache_dir=cache_dir,
            spinning=spinning,
            **saved,
        )
    from classifier.model.torch_predictor import Predictor, load_model
    from classifier.model.versions import compute_model_version

    model = load_model(folder)
    if str(device).split(":")[0] == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
    return Predictor(
        model,
        device=device,
        num_threads=num_threads,
        backend=backend,
        model_version=compute_model_version(model, path),
        **saved,
    )
