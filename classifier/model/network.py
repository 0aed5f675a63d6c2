"""The threadguard model: one shared encoder, stance heads and a toxicity head.

A comment is encoded together with its target (the article for a top-level
comment, the parent comment for a reply) as a sentence pair. The stance heads
read the pooled pair; the toxicity head reads either the same pooled pair, the
comment's own tokens inside that pass (``"comment_span"``), or a second pass
over the comment alone (``"comment"``), see
:class:`~classifier.model.config.ModelConfig`. Optional heads score toxic spans per
token and constructiveness. Saving and loading go through
:mod:`classifier.model.serialization` (the folder layout is described there).
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer, BatchEncoding, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from classifier.model.config import ModelConfig, Pooling
from classifier.model.constants import CONFIG_FILE, resolve_encoder
from classifier.model.encoding import InputEncoder
from classifier.model.outputs import ThreadguardOutput
from classifier.model.serialization import (
    DELTA_FILE,
    ENCODER_DIR,
    FORMAT_VERSION,
    HEADS_FILE,
    SaveMode,
    apply_delta,
    encoder_delta,
    load_encoder,
    lora_layers,
    prefixed,
    saved_versions,
    warn_on_version_change,
)
from classifier.model.stance_head import (
    borrowed_classes,
    by_heads,
    compose_comment_logits,
)

logger = logging.getLogger(__name__)


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


def _pool(hidden: torch.Tensor, mask: torch.Tensor, how: Pooling) -> torch.Tensor:
    """Pool token states [B, L, H] over ``mask`` [B, L] (mean) or take the first token."""
    if how == "cls":
        first = mask.to(torch.long).argmax(dim=1)  # first attended token, whatever the padding side
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    """The encoder's tokenizer, with ``clean_up_tokenization_spaces`` said (it only changes
    ``decode``, which threadguard never calls): unsaid, transformers 4.44 warns that its
    default changes (a FutureWarning at every load, issue 39)."""
    return AutoTokenizer.from_pretrained(path, clean_up_tokenization_spaces=False)


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
        self._borrowed = borrowed_classes(allowed)
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
            encoder_model = load_encoder(config.encoder)
        if tokenizer is None:
            tokenizer = load_tokenizer(resolve_encoder(config.encoder))
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
        warn_on_version_change(path, meta.get("versions", {}))
        config = ModelConfig.from_dict(meta["model_config"])
        tokenizer = load_tokenizer(str(path))
        if meta["save_mode"] == "full":
            encoder = AutoModel.from_pretrained(str(path / ENCODER_DIR))
        elif meta["save_mode"] == "delta":
            encoder = load_encoder(config.encoder)
            apply_delta(encoder, load_file(str(path / DELTA_FILE)), meta["delta"], path)
        else:
            raise ValueError(f"{path}: unknown save mode {meta['save_mode']!r}")
        model = cls(config, encoder, tokenizer)
        heads = load_file(str(path / HEADS_FILE))
        for prefix, head in model._heads().items():
            head.load_state_dict(prefixed(heads, f"{prefix}."))
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

    # ----------------------------------------------------------------- forward

    def _run_encoder(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The last layer's token states, and those of :attr:`ModelConfig.state_layers`
        stacked [B, L, n_layers, D] (None when the config names none)."""
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        layers = self.config.state_layers
        if not layers:
            return cast(torch.Tensor, self.encoder(**kwargs).last_hidden_state), None
        out = self.encoder(**kwargs, output_hidden_states=True)
        states = torch.stack([out.hidden_states[k] for k in layers], dim=2)
        return cast(torch.Tensor, out.last_hidden_state), states

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        comment_mask: torch.Tensor | None = None,
        comment_input_ids: torch.Tensor | None = None,
        comment_attention_mask: torch.Tensor | None = None,
        comment_token_type_ids: torch.Tensor | None = None,
    ) -> ThreadguardOutput:
        """Logits ``stance_logits`` [B, S], ``toxicity_logits`` [B, T] and
        ``stance_head_logits`` [B, H, S] (each head's, its missing classes at -1e4).

        ``stance_logits`` is what scoring a comment reports: the first head's, and when
        that head lacks a class, log-probabilities composed from the heads: P(class)
        from the first head that has it, and the first head's distribution scaled by
        1 - the sum of those borrowed probabilities.
        The loss that trains them is ``training.losses``'s: the runtime needs none.

        With a span head, ``span_logits`` [B, L, K] score every token of the pass (only
        the comment's tokens mean anything); with a constructiveness head,
        ``constructive_logits`` [B, C] read the same pooled comment as toxicity; with
        :attr:`ModelConfig.state_layers`, ``token_states`` [B, L, n_layers, D] are the
        encoder's states for a stance head that reads them.
        """
        hidden, states = self._run_encoder(input_ids, attention_mask, token_type_ids)
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
            alone, _ = self._run_encoder(
                comment_input_ids, comment_attention_mask, comment_token_type_ids
            )
            tox_pooled = _pool(alone, comment_attention_mask, self.config.pooling)
        by_head = by_heads(self.stance_head(self.dropout(pooled)), self.head_classes)
        # every field at construction: transformers 4.44's ModelOutput keeps an attribute
        # set later out of its keys (output["span_logits"]: KeyError at the declared floor)
        return ThreadguardOutput(
            stance_logits=self._comment_logits(by_head),
            toxicity_logits=self.toxicity_head(self.dropout(tox_pooled)),
            stance_head_logits=by_head,
            span_logits=(
                self.span_head(self.dropout(hidden)) if self.span_head is not None else None
            ),
            constructive_logits=(
                self.constructive_head(self.dropout(tox_pooled))
                if self.constructive_head is not None
                else None
            ),
            token_states=states,
        )

    def _comment_logits(self, by_head: torch.Tensor) -> torch.Tensor:
        """The stance logits a comment is scored with, from the heads' [B, H, S]."""
        return compose_comment_logits(by_head, self._borrowed)

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
            mode = "delta" if lora_layers(self.encoder) else "full"
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
            "versions": saved_versions(peft_used=bool(lora_layers(self.encoder))),
            "num_parameters": self.size_info(),
        }
        if mode == "full":
            encoder: Any = self.encoder
            if lora_layers(encoder):
                encoder = copy.deepcopy(encoder).merge_and_unload()
            encoder.save_pretrained(str(path / ENCODER_DIR))
        else:
            tensors, meta["delta"] = encoder_delta(self.encoder, self.config.encoder)
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
