"""Training recipes: a pydantic model, loaded from YAML in ``configs/``.

Unknown keys and bad values raise ``ValueError`` naming them, so a typo in a
recipe fails at once instead of silently training something else.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, StrictBool, field_validator, model_validator

from classifier.config_model import ConfigModel
from classifier.labels import TOXICITY_LABELS
from classifier.model.config import ModelConfig

Scheduler = Literal["linear", "cosine", "constant"]
ClassWeighting = Literal["none", "balanced", "sqrt", "corpus_balanced", "corpus_sqrt"]
Device = Literal["auto", "cpu", "cuda"]
# YAML 1.1 reads 1e-4 (no dot) as a string: a float field takes it as the number it means
Positive = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(strict=True, ge=1)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class CorpusEntry(ConfigModel):
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

    name: Annotated[str, Field(min_length=1)]
    weight: Positive = 1.0
    max_examples: Count | None = None
    hub_id: str | None = None
    eval_max_examples: Count | None = None
    assume: dict[str, Probability] = Field(default_factory=dict)
    stance_loss_weight: Positive = 1.0

    @field_validator("assume")
    @classmethod
    def _toxicity_labels(cls, assume: dict[str, float]) -> dict[str, float]:
        for label in assume:
            if label not in TOXICITY_LABELS:
                raise ValueError(f"{label!r} is not a toxicity label ({list(TOXICITY_LABELS)})")
        return assume

    @classmethod
    def from_value(cls, value: str | dict[str, Any]) -> CorpusEntry:
        """An entry from a recipe's list: a corpus name, or a mapping of these fields."""
        return cls(name=value) if isinstance(value, str) else cls.from_dict(value)


class TrainConfig(ConfigModel):
    """A training recipe. Every field has a default; a YAML file sets what differs."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    corpora: tuple[CorpusEntry, ...] = ()
    data_root: str | None = None
    output_dir: str = "runs/model"
    checkpoint_dir: str | None = None  # default: <output_dir>/checkpoint; holds the log too
    seed: int = 13
    batch_size: Count = 32
    eval_batch_size: Count = 64
    learning_rate: Positive = 5e-5
    head_learning_rate: Positive | None = None
    weight_decay: float = 0.01
    warmup_ratio: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.06
    scheduler: Scheduler = "linear"
    epochs: Positive = 1.0
    max_steps: Count | None = None
    grad_accumulation: Count = 1
    max_grad_norm: Positive = 1.0
    class_weighting: ClassWeighting = "sqrt"
    stance_weight: float = 1.0
    toxicity_weight: float = 1.0
    span_weight: Positive = 1.0  # the toxic-span loss (model.span_labels)
    constructive_weight: Positive = 1.0  # the constructiveness loss (model.constructive_labels)
    length_grouping: StrictBool = True
    eval_every: Count = 200
    eval_max_examples: int | None = 2000
    eval_at_start: StrictBool = True
    early_stopping_metric: str = "dev/score"
    early_stopping_patience: int | None = None
    save_mode: Literal["auto", "full", "delta"] = "auto"
    device: Device = "auto"
    num_threads: int | None = None
    stance_offsets: tuple[str, ...] = ()
    reply_offsets: StrictBool = False
    # an exponential moving average of the weights, updated every step: dev evaluation,
    # checkpoint choice and the saved model use the average (None: the raw weights)
    ema_decay: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None
    # train on the comment alone: every row's target and context are dropped (a model
    # that scores the comment by itself, as the toxicity model of a two-pass model does)
    comment_only: StrictBool = False
    # the corpora whose primary dev metrics make ``dev/score`` (empty: every corpus)
    dev_score_corpora: tuple[str, ...] = ()
    # a saved model folder (delta mode) whose adapter and heads the run starts from
    # (training/warm_start.py); None: a fresh adapter and heads
    init_from: str | None = None

    @field_validator("corpora", mode="before")
    @classmethod
    def _corpus_names(cls, corpora: Any) -> Any:
        """A recipe lists a corpus by its name alone, or as a mapping of its fields."""
        if isinstance(corpora, Sequence) and not isinstance(corpora, str):
            return [CorpusEntry(name=c) if isinstance(c, str) else c for c in corpora]
        return corpora

    @model_validator(mode="after")
    def _names_known(self) -> TrainConfig:
        if not self.corpora:
            raise ValueError("corpora: name at least one corpus to train on")
        names = [c.name for c in self.corpora]
        if len(set(names)) != len(names):
            raise ValueError(f"corpora: a corpus is listed twice in {names}")
        stray = [c for c in self.dev_score_corpora if c not in names]
        if stray:
            raise ValueError(f"dev_score_corpora names {stray}, not among the recipe's {names}")
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
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain form (saved with the model), inverse of :meth:`from_dict`."""
        return {**self.model_dump(mode="json"), "model": self.model.to_dict()}


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
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
