"""Execution backends for :class:`~classifier.model.torch_predictor.Predictor`: how a padded batch
becomes stance and toxicity logits.

``"torch"``  the model itself, float32 (the reference path).
``"int8"``   a copy whose encoder ``nn.Linear`` layers use dynamic int8 quantization
             (:func:`quantize_int8`); the heads stay float32. CPU only.
``"onnx"``   the model exported to ONNX (:func:`export_onnx`), its attention, LayerNorm
             and GELU subgraphs fused, run by ONNX Runtime (:class:`OnnxRunner`);
             needs the optional ``onnxruntime`` and ``onnx`` packages. The export of
             a saved model folder is cached on disk under that folder's key
             (:func:`classifier.model.onnx_predictor.export_key`).
``"onnx-int8"`` the same with ONNX Runtime's dynamic int8 quantization of the MatMul
             weights (per channel).

All of them read the same tokenised input (the model's
:class:`~classifier.model.encoding.InputEncoder`); tests/test_backends.py checks that each gives
the reference's labels on a fixed sample, with its probabilities within a stated
tolerance, and docs/speed.md gives the measured speed and the change in test metrics
of each. The backend names, ``auto`` and :data:`classifier.model.constants.SERVING_BACKEND`
(the one serving and bulk scoring use by default on a CPU) live in
:mod:`classifier.model.constants`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, cast

import torch
from torch import nn

from classifier.model.constants import BackendUnavailableError, check_backend
from classifier.model.network import ThreadguardModel
from classifier.model.onnx_session import OnnxSession, require_onnxruntime

logger = logging.getLogger(__name__)

ONNX_OPSET = 17
#: What an export returns (the first three always; the span and constructiveness logits
#: when the model has those heads, see :func:`output_names`).
OUTPUT_NAMES = ("stance_logits", "toxicity_logits", "stance_head_logits")
OPTIONAL_OUTPUTS = ("span_logits", "constructive_logits")


def output_names(model: ThreadguardModel) -> tuple[str, ...]:
    """The outputs a runner gives for ``model``, in export order."""
    extra = (
        name
        for name, head in (
            ("span_logits", model.span_head),
            ("constructive_logits", model.constructive_head),
        )
        if head is not None
    )
    states = ("token_states",) if model.config.state_layers else ()
    return (*OUTPUT_NAMES, *extra, *states)


# --------------------------------------------------------------------------- threads


def set_threads(num_threads: int | None) -> int:
    """Set torch's intra-op threads (process-wide) when given; return the setting in force.

    One thread per core is the fastest for batch scoring on an otherwise idle machine;
    a server that shares its cores with an event loop does better with one fewer
    (see ``classifier.moderation.settings.default_threads``).
    """
    if num_threads is not None:
        if num_threads < 1:
            raise ValueError(f"num_threads must be positive, got {num_threads}")
        torch.set_num_threads(num_threads)
    return torch.get_num_threads()


# --------------------------------------------------------------------------- runners


#: Logits by output name (:func:`output_names`).
Logits = dict[str, torch.Tensor]


class Runner(Protocol):
    """Turns a collated batch (``InputEncoder.collate``) into logits by output name: the
    comment stance [B, S], toxicity [B, T], each stance head's [B, H, S] and, when the
    model has those heads, spans [B, L, K] and constructiveness [B, C]."""

    def __call__(self, batch: Mapping[str, torch.Tensor]) -> Logits: ...


class TorchRunner:
    """Runs a (possibly quantized) :class:`ThreadguardModel` on ``device``."""

    def __init__(self, model: ThreadguardModel, device: torch.device) -> None:
        self.model = model
        self.device = device

    def __call__(self, batch: Mapping[str, torch.Tensor]) -> Logits:
        output = self.model(**{k: v.to(self.device) for k, v in batch.items()})
        return {name: cast(torch.Tensor, output[name]) for name in output_names(self.model)}


def quantize_int8(model: ThreadguardModel) -> ThreadguardModel:
    """A copy of ``model`` whose encoder ``nn.Linear`` layers are dynamically int8-quantized.

    Weights are stored as int8 (per tensor), activations are quantized on the fly per
    batch; the heads stay float32 (they are tiny and carry the decision). CPU only.
    ``model`` itself is left as it was; the copy shares its other tensors (embeddings,
    LayerNorms, heads) with it instead of duplicating them, so once ``model`` is
    dropped only the int8 weights remain of its Linear layers.
    """
    quantization = getattr(getattr(torch, "ao", None), "quantization", None)
    if quantization is None or not hasattr(quantization, "quantize_dynamic"):
        raise BackendUnavailableError("this torch build has no dynamic quantization")
    if model.device.type != "cpu":
        raise BackendUnavailableError("int8 dynamic quantization runs on the CPU only")
    engines = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    if not engines:
        raise BackendUnavailableError("this torch build has no quantized CPU engine")
    if torch.backends.quantized.engine == "none":
        torch.backends.quantized.engine = engines[0]
    quantized = copy_model(model, share_tensors=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the eager-mode API is deprecated, still works
        quantization.quantize_dynamic(
            quantized.encoder, {nn.Linear}, dtype=torch.qint8, inplace=True
        )
    return quantized.eval()


def copy_model(model: ThreadguardModel, *, share_tensors: bool = False) -> ThreadguardModel:
    """A deep copy of ``model`` sharing its tokenizer; and its tensors with ``share_tensors``.

    A copy that shares tensors has its own modules (which can be swapped, e.g. for
    quantized ones) over the same parameters and buffers: only for inference.
    """
    import copy

    memo: dict[int, Any] = {id(model.tokenizer): model.tokenizer}
    memo[id(model.input_encoder)] = model.input_encoder
    if share_tensors:
        for tensor in (*model.parameters(), *model.buffers()):
            memo[id(tensor)] = tensor
    return copy.deepcopy(model, memo)


# --------------------------------------------------------------------------- ONNX


def _input_names(model: ThreadguardModel) -> list[str]:
    names = ["input_ids", "attention_mask"]
    if model.input_encoder.with_types:
        names.append("token_type_ids")
    mode = model.config.toxicity_input
    if mode == "comment_span":
        names.append("comment_mask")
    elif mode == "comment":
        names += ["comment_input_ids", "comment_attention_mask"]
        if model.input_encoder.with_types:
            names.append("comment_token_type_ids")
    return names


class _Exportable(nn.Module):
    """Positional inputs and a tuple of logits, as the ONNX exporter wants them."""

    def __init__(self, model: ThreadguardModel, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names
        self.outputs = output_names(model)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        output = self.model(**dict(zip(self.names, inputs, strict=True)))
        return tuple(output[name] for name in self.outputs)


def export_onnx(model: ThreadguardModel, path: str | Path) -> Path:
    """Export ``model`` (float32, CPU) to an ONNX file at ``path`` with dynamic batch and length.

    Needs the ``onnx`` package (the exporter writes through it).
    """
    try:
        import onnx  # noqa: F401
    except ImportError as err:
        raise BackendUnavailableError(
            "exporting to ONNX needs the onnx package: pip install onnx onnxruntime"
        ) from err
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = copy_model(model).to("cpu").float().eval()
    _use_eager_attention(model)
    names = _input_names(model)
    # An example with padding, a target and a comment so that every branch is traced
    # the way real batches take it.
    batch = model.input_encoder(
        ["the article", ""], ["", ""], ["a comment on it, with a few more words", "short"]
    )
    wrapper = _Exportable(model, names).eval()  # export restores this module's mode
    alone = {"comment_input_ids", "comment_attention_mask", "comment_token_type_ids"}
    dynamic = {  # the comment-alone inputs have their own length; comment_mask the pair's
        name: {0: "batch", 1: "comment_sequence" if name in alone else "sequence"} for name in names
    }
    outputs = output_names(model)
    dynamic.update({name: {0: "batch"} for name in outputs})
    for name in ("span_logits", "token_states"):
        if name in outputs:
            dynamic[name] = {0: "batch", 1: "sequence"}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python code
        torch.onnx.export(
            wrapper,
            tuple(batch[name] for name in names),
            str(tmp),
            input_names=names,
            output_names=list(outputs),
            dynamic_axes=dynamic,
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    tmp.replace(path)  # atomic: a concurrent reader sees the old file or the whole new one
    logger.info("exported %s inputs %s to %s", type(model).__name__, names, path)
    return path


def _use_eager_attention(model: ThreadguardModel) -> None:
    """Switch the encoder to explicit attention math where it supports it: ONNX Runtime's
    optimizer fuses that into its ``Attention`` op (9 % faster measured on MiniLM), while
    the export of PyTorch's fused SDPA it leaves as dozens of small ops. Same numbers."""
    encoder: Any = model.encoder
    get_base_model = getattr(encoder, "get_base_model", None)
    base = get_base_model() if callable(get_base_model) else encoder
    try:
        base.set_attn_implementation("eager")
    except (AttributeError, ValueError) as err:  # an architecture without it keeps SDPA
        logger.info("exporting with the encoder's own attention (%s)", err)


def optimize_onnx(src: Path, dst: Path, model: ThreadguardModel) -> Path:
    """Fuse attention, LayerNorm and GELU subgraphs (``onnxruntime.transformers``); ``dst``.

    Falls back to a copy of ``src`` (and logs why) when the optimizer cannot handle
    the graph: the result is then merely unfused, never wrong.
    """
    import shutil

    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        config = _unwrap_config(model)
        optimized = optimize_model(
            str(src),
            model_type="bert",
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
            opt_level=0,  # the fusions only; the session applies ORT's own passes
        )
        optimized.save_model_to_file(str(tmp))
    except Exception as err:  # an optimizer failure must not stop inference
        logger.warning("ONNX transformer fusions failed (%s); using the plain export", err)
        shutil.copyfile(src, tmp)
    tmp.replace(dst)
    return dst


def quantize_onnx(src: Path, dst: Path) -> Path:
    """ONNX Runtime's dynamic int8 quantization of the encoder's MatMul weights (per channel).

    Embedding lookups and the heads (``Gemm``) stay float32, as with :func:`quantize_int8`.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp.onnx")
    # it logs advice for static quantization on the root logger: noise here
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(src),
            str(tmp),
            weight_type=QuantType.QInt8,
            per_channel=True,
            # not the embeddings (Gather), not the heads (Gemm)
            op_types_to_quantize=["MatMul", "Attention"],
            # the fused (com.microsoft) nodes defeat ONNX shape inference: they are float32
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)
    tmp.replace(dst)
    return dst


def _unwrap_config(model: ThreadguardModel) -> Any:
    encoder: Any = model.encoder
    get_base_model = getattr(encoder, "get_base_model", None)
    return (get_base_model() if callable(get_base_model) else encoder).config


class OnnxRunner:
    """Runs an ONNX export of a :class:`ThreadguardModel` with ONNX Runtime on the CPU.

    The model is exported (:func:`export_onnx`), its transformer subgraphs fused
    (:func:`optimize_onnx`) and, with ``quantize``, its MatMul weights quantized to int8
    (:func:`quantize_onnx`). With ``stem`` (a saved model folder's place in the export
    cache, :func:`classifier.model.onnx_predictor.export_key`), each step's file is
    ``stem.onnx``, ``stem.fused.onnx``, ``stem.fused.int8.onnx`` and is reused when it is
    there; without one (a model that was never saved has no key), the files are written
    to a temporary folder and removed once ONNX Runtime has read them.

    Args:
        model: the model (float32).
        stem: the cached files' path without suffix; None: export afresh, cache nothing.
        num_threads: ONNX Runtime intra-op threads; default torch's current setting.
        quantize: run the int8 model (the ``"onnx-int8"`` backend).
        optimize: apply the transformer fusions.
        spinning: let idle intra-op threads spin (ONNX Runtime's default); see
            :class:`~classifier.model.onnx_session.OnnxSession`.
    """

    def __init__(
        self,
        model: ThreadguardModel,
        *,
        stem: Path | None = None,
        num_threads: int | None = None,
        quantize: bool = False,
        optimize: bool = True,
        spinning: bool = True,
    ) -> None:
        require_onnxruntime()
        self.names = _input_names(model)
        if stem is None:
            with tempfile.TemporaryDirectory(prefix="threadguard-onnx-") as folder:
                self._open(model, Path(folder) / "model", num_threads, quantize, optimize, spinning)
        else:
            stem.parent.mkdir(parents=True, exist_ok=True)
            self._open(model, stem, num_threads, quantize, optimize, spinning)

    def _open(
        self,
        model: ThreadguardModel,
        stem: Path,
        num_threads: int | None,
        quantize: bool,
        optimize: bool,
        spinning: bool,
    ) -> None:
        path = stem.with_suffix(".onnx")
        if not path.exists():
            export_onnx(model, path)
        if optimize:
            fused = stem.with_suffix(".fused.onnx")
            path = fused if fused.exists() else optimize_onnx(path, fused, model)
        if quantize:
            int8 = path.with_suffix(".int8.onnx")
            path = int8 if int8.exists() else quantize_onnx(path, int8)
        self.path = path
        self.session = OnnxSession(path, num_threads or torch.get_num_threads(), spinning=spinning)
        if self.session.names != self.names:  # a stale or foreign file under the same name
            raise RuntimeError(f"{path} takes {self.session.names}, the model gives {self.names}")

    def __call__(self, batch: Mapping[str, torch.Tensor]) -> Logits:
        found = self.session.run({k: batch[k].cpu().numpy() for k in self.names})
        return {name: torch.from_numpy(a) for name, a in found.items()}


def make_runner(
    model: ThreadguardModel,
    backend: str,
    device: torch.device,
    num_threads: int | None = None,
) -> tuple[ThreadguardModel, Runner]:
    """The model to expose (the quantized copy for ``int8``) and the runner for ``backend``."""
    backend = check_backend(backend)
    if backend != "torch" and device.type != "cpu":
        raise BackendUnavailableError(
            f"backend {backend!r} runs on the CPU; use backend='torch' on {device}"
        )
    if backend == "int8":
        model = quantize_int8(model)
    if backend in ("onnx", "onnx-int8"):
        return model, OnnxRunner(model, num_threads=num_threads, quantize=backend == "onnx-int8")
    return model, TorchRunner(model, device)


__all__ = [
    "OnnxRunner",
    "Runner",
    "TorchRunner",
    "export_onnx",
    "make_runner",
    "output_names",
    "quantize_int8",
    "set_threads",
]
