"""The moderation policy: per toxicity label a threshold and the action it triggers.

A policy file (YAML) names, for each label it acts on, a ``threshold`` in
[0, 1] and an ``action``, ``review`` or ``reject``, and for a review rule optionally a
higher ``reject`` threshold from which the comment is refused outright::

    labels:
      toxicity: {threshold: 0.8, action: review}
      severe_toxicity: {threshold: 0.7, action: reject}
      threat: {threshold: 0.5, action: review, reject: 0.9}
      spam: {threshold: 0.9, action: reject}

A label *triggers* when the model's probability for it is at or above its
threshold. The decision for a comment is the strictest triggered action
(``reject`` > ``review``), else ``approve``. Labels the policy does not name
never change the decision; their scores are still reported.

The other half of moderation: an optional ``feature`` rule names a
constructiveness label (:data:`~classifier.labels.CONSTRUCTIVE_LABELS`) and a
threshold. A comment that no toxicity rule holds back and whose score for that
label reaches the threshold is ``feature``: worth showing first::

    feature: {label: constructive, threshold: 0.8}

With a model that gives no constructiveness scores the feature rule never fires.

The thresholds file written by ``threadguard evaluate --calibrate`` has this
same shape, so it loads directly: extra keys inside a label (``precision``,
``recall``, ``held_fraction``, ...) are accepted and ignored. Unknown
top-level keys, label names that are not in
:data:`~classifier.labels.TOXICITY_LABELS`, thresholds outside [0, 1] and
unknown actions are errors.

:meth:`Policy.decide` is the one code path from a prediction to a decision: the
moderation service and ``threadguard score --moderate`` both call it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, get_args

import yaml

from classifier.labels import CONSTRUCTIVE_LABELS, TOXICITY_LABELS
from classifier.schema import DecisionName, Reason

logger = logging.getLogger(__name__)

Action = Literal["review", "reject"]

#: Actions a rule may trigger, mildest first.
ACTIONS: Final[tuple[str, ...]] = get_args(Action)
#: Possible decisions, mildest first (``feature``: approved and worth showing first).
DECISIONS: Final[tuple[str, ...]] = get_args(DecisionName)
_SEVERITY: Final[dict[str, int]] = {name: i for i, name in enumerate(DECISIONS)}

#: The top-level keys a policy file may have.
POLICY_KEYS: Final[frozenset[str]] = frozenset({"labels", "feature"})

#: The default policy, the same as ``configs/moderation.yaml`` (a test keeps them equal), made
#: for the shipped model: that file says where each threshold comes from.
DEFAULT_POLICY: Final[dict[str, Any]] = {
    "labels": {
        "toxicity": {"threshold": 0.5, "action": "review"},
        "identity_attack": {"threshold": 0.5, "action": "review"},
        "insult": {"threshold": 0.5, "action": "review"},
        "obscene": {"threshold": 0.5, "action": "review"},
        "threat": {"threshold": 0.5, "action": "review"},
        "spam": {"threshold": 0.8, "action": "reject"},
    },
    "feature": {"label": "constructive", "threshold": 0.8},
}


def _threshold(value: Any, what: str) -> float:
    """``value`` as a float in [0, 1]; ``ValueError`` saying ``what`` must be one."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0.0 <= value <= 1.0
    ):
        raise ValueError(f"{what} must be a number in [0, 1]")
    return float(value)


def constructive_key(constructive: Mapping[str, float] | None) -> float:
    """Sort key of a result by its ``constructive`` scores, most constructive first: minus
    the ``constructive`` score (results without one last; a stable sort keeps their order).
    Rows and the hook's results both use it."""
    return -float((constructive or {}).get("constructive", -1.0))


@dataclass(frozen=True)
class Rule:
    """``label`` triggers ``action`` when its probability is ``>= threshold``, and
    ``reject`` from ``reject_threshold`` on when one is given (a label whose high scores are
    sure enough to refuse outright, like a calibrated threat, while its middle goes to a
    moderator)."""

    label: str
    threshold: float
    action: Action
    reject_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.label not in TOXICITY_LABELS:
            raise ValueError(
                f"unknown toxicity label {self.label!r} in the policy; known: {list(TOXICITY_LABELS)}"
            )
        checked = _threshold(
            self.threshold, f"threshold {self.threshold!r} for label {self.label!r}"
        )
        object.__setattr__(self, "threshold", checked)
        if self.action not in ACTIONS:
            raise ValueError(
                f"unknown action {self.action!r} for label {self.label!r}; known: {list(ACTIONS)}"
            )
        if self.reject_threshold is not None:
            reject = _threshold(
                self.reject_threshold,
                f"reject threshold {self.reject_threshold!r} for label {self.label!r}",
            )
            if self.action != "review" or reject < self.threshold:
                raise ValueError(
                    f"label {self.label!r}: 'reject' ({reject}) needs action review and a "
                    f"threshold at or above the review threshold ({self.threshold})"
                )
            object.__setattr__(self, "reject_threshold", reject)

    def trigger(self, score: float) -> tuple[Action, float] | None:
        """The action ``score`` triggers and the threshold it reached, or None."""
        if self.reject_threshold is not None and score >= self.reject_threshold:
            return "reject", self.reject_threshold
        if score >= self.threshold:
            return self.action, self.threshold
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"threshold": self.threshold, "action": self.action}
        if self.reject_threshold is not None:
            out["reject"] = self.reject_threshold
        return out


@dataclass(frozen=True)
class FeatureRule:
    """A comment nothing holds back is featured when its ``label`` score is ``>= threshold``."""

    label: str = "constructive"
    threshold: float = 0.8

    def __post_init__(self) -> None:
        if self.label not in CONSTRUCTIVE_LABELS:
            raise ValueError(
                f"unknown feature label {self.label!r}; known: {list(CONSTRUCTIVE_LABELS)}"
            )
        checked = _threshold(
            self.threshold, f"feature threshold {self.threshold!r} for {self.label!r}"
        )
        object.__setattr__(self, "threshold", checked)

    @classmethod
    def from_dict(cls, data: Any) -> FeatureRule:
        if not isinstance(data, Mapping):
            raise ValueError(f"'feature' must map to {{label, threshold}}, got {data!r}")
        unknown = sorted(set(map(str, data)) - {"label", "threshold"})
        if unknown:
            raise ValueError(f"unknown feature key(s) {unknown}; known: ['label', 'threshold']")
        if "threshold" not in data:
            raise ValueError("'feature' has no 'threshold'")
        return cls(str(data.get("label", "constructive")), data["threshold"])

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "threshold": self.threshold}


@dataclass(frozen=True)
class Decision:
    """The moderation decision for one comment, with everything that led to it.

    ``reasons`` lists the triggered rules, strictest action first, then highest
    score; ``scores`` has every toxicity label the model predicts; ``stance``
    is the model's stance of the comment toward its target
    (``{"label": ..., "scores": {...}}``).
    """

    decision: DecisionName
    reasons: tuple[Reason, ...]
    scores: dict[str, float]
    stance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: ``decision``, ``reasons``, ``scores``, ``stance``."""
        return {
            "decision": self.decision,
            "reasons": [r.model_dump() for r in self.reasons],
            "scores": dict(self.scores),
            "stance": {
                "label": self.stance.get("label"),
                "scores": dict(self.stance.get("scores") or {}),
            },
        }

    def has_reason(self, label: str) -> bool:
        """Whether ``label`` is among the triggered rules."""
        return any(r.label == label for r in self.reasons)


@dataclass(frozen=True)
class Policy:
    """A set of :class:`Rule`, at most one per label. Build with :meth:`load` or :meth:`from_dict`."""

    rules: tuple[Rule, ...] = ()
    source: str = "<dict>"
    feature: FeatureRule | None = None

    def __post_init__(self) -> None:
        labels = [r.label for r in self.rules]
        duplicates = sorted({n for n in labels if labels.count(n) > 1})
        if duplicates:
            raise ValueError(f"the policy names label(s) {duplicates} more than once")

    # ------------------------------------------------------------------ loading

    @classmethod
    def default(cls) -> Policy:
        """The built-in default policy (:data:`DEFAULT_POLICY`)."""
        return cls.from_dict(DEFAULT_POLICY, source="<default policy>")

    @classmethod
    def load(cls, path: str | Path | None) -> Policy:
        """Read a policy (or calibrated thresholds) file; ``None`` gives :meth:`default`.

        Raises ``OSError`` when the file cannot be read and ``ValueError``
        naming the file and the bad value otherwise.
        """
        if path is None:
            return cls.default()
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML: {exc}") from None
        try:
            return cls.from_dict(data, source=str(path))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Policy:
        """Build a policy from the parsed file (see the module docstring for the shape)."""
        if not isinstance(data, Mapping):
            raise ValueError(
                f"a policy must be a mapping with a 'labels' key, got {type(data).__name__}"
            )
        unknown = sorted(set(map(str, data)) - POLICY_KEYS)
        if unknown:
            raise ValueError(f"unknown policy key(s) {unknown}; known: {sorted(POLICY_KEYS)}")
        if "labels" not in data:
            raise ValueError("the policy has no 'labels' key")
        labels = data["labels"]
        if labels is None:
            labels = {}
        if not isinstance(labels, Mapping):
            raise ValueError(
                f"'labels' must map label names to {{threshold, action}}, got {type(labels).__name__}"
            )
        rules = []
        for label, spec in labels.items():
            if not isinstance(spec, Mapping):
                raise ValueError(
                    f"label {label!r} must map to {{threshold: ..., action: ...}}, got {spec!r}"
                )
            for key in ("threshold", "action"):
                if key not in spec:
                    raise ValueError(f"label {label!r} has no {key!r}")
            ignored = sorted(set(map(str, spec)) - {"threshold", "action", "reject"})
            if ignored:
                logger.debug("policy label %r: ignoring keys %s", label, ignored)
            rules.append(Rule(str(label), spec["threshold"], spec["action"], spec.get("reject")))
        if not rules:
            logger.warning("the policy %s has no rules: every comment will be approved", source)
        feature = FeatureRule.from_dict(data["feature"]) if data.get("feature") else None
        return cls(tuple(rules), source, feature)

    def to_dict(self) -> dict[str, Any]:
        """The policy file's content, inverse of :meth:`from_dict`."""
        out: dict[str, Any] = {"labels": {r.label: r.to_dict() for r in self.rules}}
        if self.feature is not None:
            out["feature"] = self.feature.to_dict()
        return out

    # ------------------------------------------------------------------ use

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels the policy acts on."""
        return tuple(r.label for r in self.rules)

    def holds(self) -> dict[str, float]:
        """Per label, the score at which the policy holds a comment (its lowest threshold):
        what :func:`~classifier.model.spans.explaining_spans` keeps spans for."""
        return {r.label: r.threshold for r in self.rules}

    def check_labels(self, model_labels: Iterable[str]) -> None:
        """Raise ``ValueError`` if a rule names a label the model does not predict.

        Called at start-up: a moderator who wrote a rule expects it enforced, so
        a rule the model cannot apply is an error, not a warning.
        """
        available = set(model_labels)
        missing = [label for label in self.labels if label not in available]
        if missing:
            raise ValueError(
                f"the policy {self.source} has rules for {missing}, which the model does not "
                f"predict (it predicts {sorted(available)}); remove those rules or use a model "
                "trained on them"
            )

    def decide(self, prediction: Mapping[str, Any]) -> Decision:
        """The decision for one prediction (as :meth:`Predictor.predict` returns it).

        ``prediction`` has ``toxicity`` (label -> probability) and ``stance``
        (``{"label", "scores"}``). Raises ``ValueError`` if a rule's label has
        no score.
        """
        scores = {str(k): float(v) for k, v in prediction["toxicity"].items()}
        reasons: list[Reason] = []
        for rule in self.rules:
            if rule.label not in scores:
                raise ValueError(f"the prediction has no score for policy label {rule.label!r}")
            score = scores[rule.label]
            triggered = rule.trigger(score)
            if triggered is not None:
                reasons.append(
                    Reason(
                        label=rule.label, score=score, threshold=triggered[1], action=triggered[0]
                    )
                )
        reasons.sort(key=lambda r: (-_SEVERITY[r.action], -r.score, r.label))
        decision: DecisionName = reasons[0].action if reasons else "approve"
        constructive = prediction.get("constructive") or {}
        feature = self.feature
        if not reasons and feature is not None and feature.label in constructive:
            score = float(constructive[feature.label])
            if score >= feature.threshold:
                decision = "feature"
                reasons.append(
                    Reason(
                        label=feature.label,
                        score=score,
                        threshold=feature.threshold,
                        action="feature",
                    )
                )
        stance = prediction.get("stance") or {}
        return Decision(
            decision=decision,
            reasons=tuple(reasons),
            scores=scores,
            stance={
                "label": stance.get("label"),
                "scores": {str(k): float(v) for k, v in (stance.get("scores") or {}).items()},
            },
        )

    def decide_many(self, predictions: Iterable[Mapping[str, Any]]) -> list[Decision]:
        """:meth:`decide` for each prediction, in order."""
        return [self.decide(p) for p in predictions]
