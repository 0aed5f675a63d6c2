"""Training recipes: a typed dataclass, loaded from YAML in ``configs/``.

Unknown keys and bad values raise ``ValueError`` naming them, so a typo in a
recipe fails at once instead of silently training something else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from classifier.labels import TOXICITY_LABELS
from classifier.model.config import ModelConfig, reject_unknown_keys

Scheduler = Literal["linear", "cosine", "constant"]
ClassWeighting = Literal["none", "balanced", "sqrt", "corpus_balanced", "corpus_sqrt"]
Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class CorpusEntry:
    """One corpus in the training mix.

    ``weight`` multiplies how many of its training examples an epoch draws
    (1.0: each once; 0.5: a seeded half; 2.0: each twice); ``max_examples``
    caps the count before weighting. ``hub_id`` loads it from the Hugging Face
    Hub instead of the local data root. ``eval_max_examples`` overrides the
    recipe's cap on its dev split (a corpus whose small dev subset misleads
    checkpoint choice can be measured on more of it). ``assume`` gives labels the
    corpus leaves unknown a value for every training row (``{spam: 0.0}``: news
    comments nobody posted as spam teach the spam head what a comment looks like);
    its dev and test splits keep the corpus's own labels. ``stance_loss_weight``
    multiplies its examples' share of the stance loss without repeating them (unlike
    ``weight``): a way to lean on one stance head's corpus without overfitting it.
    """

    name: str
    weight: float = 1.0
    max_examples: int | None = None
    hub_id: str | None = None
    eval_max_examples: int | None = None
    assume: Mapping[str, float] = field(default_factory=dict)
    stance_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"corpus name must be a non-empty string, got {self.name!r}")
        for key in ("weight", "stance_loss_weight"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"corpus {self.name}: {key} must be > 0, got {value!r}")
        if not isinstance(self.assume, Mapping):
            raise ValueError(f"corpus {self.name}: assume must be a mapping, got {self.assume!r}")
        for label, value in self.assume.items():
            if label not in TOXICITY_LABELS:
                raise ValueError(
                    f"corpus {self.name}: assume names {label!r}, not a toxicity label "
                    f"({list(TOXICITY_LABELS)})"
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(
                    f"corpus {self.name}: assume {label}={value!r} is not a number in [0, 1]"
                )
        for key in ("max_examples", "eval_max_examples"):
            value = getattr(self, key)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise ValueError(
                    f"corpus {self.name}: {key} must be a positive integer, got {value!r}"
                )

    @classmethod
    def from_value(cls, value: str | Mapping[str, Any]) -> CorpusEntry:
        if isinstance(value, str):
            return cls(name=value)
        if not isinstance(value, Mapping):
            raise ValueError(f"a corpus entry must be a name or a mapping, got {value!r}")
        reject_unknown_keys(value, cls, f"corpus entry {value.get('name', '?')!r}")
        return cls(**value)


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe. Every field has a default; a YAML file sets what differs."""

    model: ModelConfig = field(default_factory=ModelConfig)
    corpora: tuple[CorpusEntry, ...] = ()
    data_root: str | None = None
    output_dir: str = "runs/model"
    checkpoint_dir: str | None = None  # default: <output_dir>/checkpoint; holds the log too
    seed: int = 13
    batch_size: int = 32
    eval_batch_size: int = 64
    learning_rate: float = 5e-5
    head_learning_rate: float | None = None
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    scheduler: Scheduler = "linear"
    epochs: float = 1.0
    max_steps: int | None = None
    grad_accumulation: int = 1
    max_grad_norm: float = 1.0
    class_weighting: ClassWeighting = "sqrt"
    stance_weight: float = 1.0
    toxicity_weight: float = 1.0
    span_weight: float = 1.0  # the toxic-span loss (model.span_labels)
    constructive_weight: float = 1.0  # the constructiveness loss (model.constructive_labels)
    length_grouping: bool = True
    eval_every: int = 200
    eval_max_examples: int | None = 2000
    eval_at_start: bool = True
    early_stopping_metric: str = "dev/score"
    early_stopping_patience: int | None = None
    save_mode: Literal["auto", "full", "delta"] = "auto"
    device: Device = "auto"
    num_threads: int | None = None
    stance_offsets: tuple[str, ...] = ()
    reply_offsets: bool = False
    # an exponential moving average of the weights, updated every step: dev evaluation,
    # checkpoint choice and the saved model use the average (None: the raw weights)
    ema_decay: float | None = None
    # train on the comment alone: every row's target and context are dropped (a model
    # that scores the comment by itself, as the toxicity model of a two-pass model does)
    comment_only: bool = False
    # the corpora whose primary dev metrics make ``dev/score`` (empty: every corpus)
    dev_score_corpora: tuple[str, ...] = ()
    # a saved model folder (delta mode) whose adapter and heads the run starts from
    # (training/warm_start.py); None: a fresh adapter and heads
    init_from: str | None = None

    def __post_init__(self) -> None:
        def positive(name: str, integer: bool = True) -> None:
            value = getattr(self, name)
            ok = isinstance(value, int) if integer else isinstance(value, int | float)
            if not ok or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")

        for name in ("batch_size", "eval_batch_size", "grad_accumulation", "eval_every"):
            positive(name)
        for name in (
            "learning_rate",
            "epochs",
            "max_grad_norm",
            "span_weight",
            "constructive_weight",
        ):
            positive(name, integer=False)
        if self.max_steps is not None:
            positive("max_steps")
        if self.head_learning_rate is not None:
            positive("head_learning_rate", integer=False)
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        for name, allowed in (
            ("scheduler", get_args(Scheduler)),
            ("class_weighting", get_args(ClassWeighting)),
            ("device", get_args(Device)),
            ("save_mode", ("auto", "full", "delta")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} {getattr(self, name)!r} is not one of {allowed}")
        if self.ema_decay is not None and (
            isinstance(self.ema_decay, bool)
            or not isinstance(self.ema_decay, int | float)
            or not 0.0 < self.ema_decay < 1.0
        ):
            raise ValueError(f"ema_decay must be a number in (0, 1), got {self.ema_decay!r}")
        if not self.corpora:
            raise ValueError("corpora: name at least one corpus to train on")
        names = [c.name for c in self.corpora]
        if len(set(names)) != len(names):
            raise ValueError(f"corpora: a corpus is listed twice in {names}")
        if not isinstance(self.comment_only, bool):
            raise ValueError(f"comment_only must be true or false, got {self.comment_only!r}")
        if isinstance(self.dev_score_corpora, str):
            raise ValueError(
                f"dev_score_corpora must be a list of corpus names, got {self.dev_score_corpora!r}"
            )
        object.__setattr__(self, "dev_score_corpora", tuple(self.dev_score_corpora))
        stray = [c for c in self.dev_score_corpora if c not in names]
        if stray:
            raise ValueError(f"dev_score_corpora names {stray}, not among the recipe's {names}")
        if not isinstance(self.reply_offsets, bool):
            raise ValueError(f"reply_offsets must be true or false, got {self.reply_offsets!r}")
        if isinstance(self.stance_offsets, str):
            raise ValueError(
                f"stance_offsets must be a list of head names, got {self.stance_offsets!r}"
            )
        object.__setattr__(self, "stance_offsets", tuple(self.stance_offsets))
        heads = [h.name for h in self.model.heads]
        unknown_heads = [h for h in self.stance_offsets if h not in heads]
        if unknown_heads:
            raise ValueError(
                f"stance_offsets names {unknown_heads}, not among the model's stance heads {heads}"
            )
        for head in self.model.stance_heads:
            unknown = [c for c in head.corpora if c not in names]
            if unknown:
                raise ValueError(
                    f"model.stance_heads: head {head.name!r} names corpora {unknown} "
                    f"that the recipe does not train on ({names})"
                )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build a recipe from a mapping; ``ValueError`` names unknown keys and bad values."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a training config must be a mapping, got {type(data).__name__}")
        reject_unknown_keys(data, cls, "training config")
        values = dict(data)
        for f in dataclasses.fields(cls):
            # YAML 1.1 reads 1e-4 (no dot) as a string; accept it as the number it means
            if "float" in str(f.type) and isinstance(values.get(f.name), str):
                try:
                    values[f.name] = float(values[f.name])
                except ValueError:
                    raise ValueError(f"{f.name} must be a number, got {values[f.name]!r}") from None
        if "model" in values:
            model = values["model"] or {}
            values["model"] = (
                model if isinstance(model, ModelConfig) else ModelConfig.from_dict(model)
            )
        if "corpora" in values:
            corpora = values["corpora"]
            if not isinstance(corpora, Sequence) or isinstance(corpora, str):
                raise ValueError(f"corpora must be a list, got {corpora!r}")
            values["corpora"] = tuple(CorpusEntry.from_value(c) for c in corpora)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain form (saved with the model), inverse of :meth:`from_dict`."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["model"] = self.model.to_dict()
        out["corpora"] = [dataclasses.asdict(c) for c in self.corpora]
        return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"model.max_length=128"`` → (``["model", "max_length"]``, ``128``); values are YAML."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected KEY=VALUE, got {item!r}")
    return key.strip().split("."), yaml.safe_load(raw)


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Load a YAML recipe and apply ``--set KEY=VALUE`` overrides (dotted keys reach into sections)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a training config must be a mapping")
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ValueError(f"--set {item}: {key!r} is not a section")
            node = child
        node[keys[-1]] = value
    try:
        return TrainConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
