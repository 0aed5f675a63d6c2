"""The Python API: load a model once, then score strings, lists of strings or threads.

>>> from classifier import Threadguard
>>> tg = Threadguard()  # the shipped model, offline
>>> result = tg.predict("You are a pathetic idiot and everyone here knows it")
>>> result.decision, result.toxicity["insult"] > 0.5
('review', True)
>>> [(result.text[s["start"]:s["end"]], s["label"]) for s in result.spans]
[('pathetic idiot', 'insult')]
>>> result.constructive["constructive"] < 0.1
True
>>> [r.decision for r in tg.predict(["Thanks for the clear summary.", "See you at the meeting."])]
['approve', 'approve']
>>> reply = tg.predict("That is simply not true.", target="The council cut the bus budget.")
>>> sorted(reply.stance_scores) == sorted(tg.stance_labels)
True
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import overload

from pydantic import BaseModel, ConfigDict, Field

from classifier.model.loading import load_predictor
from classifier.model.predictor import BatchPredictor, Prediction, PredictOptions
from classifier.moderation.policy import Decision, Policy
from classifier.schema import (
    CommentResult,
    DecisionName,
    ErrorRecord,
    Reason,
    Scored,
    Span,
    Thread,
)


class Result(BaseModel):
    """One comment's scores and the moderation decision, keyed by label name: a
    :class:`~classifier.schema.Scored` (what rows and the hook's answers carry), with its
    stance spread into ``stance`` and ``stance_scores``, as this API has always given it."""

    model_config = ConfigDict(frozen=True)

    text: str
    #: the most likely stance toward ``target`` and every stance class's probability
    stance: str
    stance_scores: dict[str, float]
    #: each toxicity label's probability (calibrated on news comments where the model is)
    toxicity: dict[str, float]
    #: feature / approve / review / reject, from the moderation policy
    decision: DecisionName
    reasons: tuple[Reason, ...]
    target: str = ""
    #: constructiveness and its characteristics (empty for a model without that head)
    constructive: dict[str, float] = Field(default_factory=dict)
    #: the words that drove the toxicity: ``text[start:end]``, with a label and score
    spans: tuple[Span, ...] = ()

    @classmethod
    def of(cls, scored: Scored, target: str, decision: Decision) -> Result:
        """The result for ``scored``, whose stance is toward the text ``target``."""
        return cls(
            text=scored.text,
            target=target,
            stance=scored.stance.label,
            stance_scores=scored.stance.scores,
            toxicity=scored.toxicity,
            decision=decision.decision,
            reasons=decision.reasons,
            constructive=scored.constructive or {},
            spans=tuple(scored.spans or ()),
        )


class Threadguard:
    """A loaded model and a moderation policy.

    Args:
        model: a saved model folder (default: the shipped model).
        backend: ``auto`` (ONNX Runtime on a CPU), ``torch``, ``int8``, ``onnx`` or
            ``onnx-int8`` (:func:`classifier.model.loading.load_predictor`).
        policy: a moderation policy file (default: the built-in one,
            configs/moderation.yaml).
        batch_size: comments per forward pass.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        backend: str = "auto",
        policy: str | Path | None = None,
        batch_size: int = 32,
    ) -> None:
        self.policy = Policy.load(policy)
        # spans explain what this policy holds
        options = PredictOptions(batch_size=batch_size, span_holds=self.policy.holds())
        self.predictor: BatchPredictor = load_predictor(model, backend=backend, options=options)
        self.policy.check_labels(self.predictor.toxicity_labels)

    @property
    def stance_labels(self) -> tuple[str, ...]:
        """The stance classes, in the model's order."""
        return self.predictor.stance_labels

    @property
    def toxicity_labels(self) -> tuple[str, ...]:
        """The toxicity labels the model scores."""
        return self.predictor.toxicity_labels

    @overload
    def predict(self, texts: str, target: str = "") -> Result: ...  # type: ignore[overload-overlap]

    @overload
    def predict(self, texts: Sequence[str], target: str | Sequence[str] = "") -> list[Result]: ...

    def predict(
        self, texts: str | Sequence[str], target: str | Sequence[str] = ""
    ) -> Result | list[Result]:
        """Score one comment (a ``Result``) or many (a list, in input order).

        ``target`` is what the comment answers (an article's title and lead, or the parent
        comment): one for all, or one per text. Stance is taken toward it; toxicity reads the
        comment alone. Raises ``ValueError`` for a text that is not a string or a target list
        of another length.
        """
        single = isinstance(texts, str)
        batch = [texts] if isinstance(texts, str) else list(texts)
        targets = [target] * len(batch) if isinstance(target, str) else list(target)
        if len(targets) != len(batch):
            raise ValueError(f"got {len(targets)} targets for {len(batch)} texts")
        for i, (text, tgt) in enumerate(zip(batch, targets, strict=True)):
            if not isinstance(text, str) or not isinstance(tgt, str):
                raise ValueError(f"text {i}: texts and targets must be strings")
        items = [{"text": t, "target": g} for t, g in zip(batch, targets, strict=True)]
        results = [
            self._result(item, prediction)
            for item, prediction in zip(items, self.predictor.predict(items), strict=True)
        ]
        return results[0] if single else results

    def score_threads(self, threads: Iterable[Thread]) -> Iterator[CommentResult | ErrorRecord]:
        """One row per comment of each thread, as `threadguard score --moderate` writes them
        (:meth:`CommentResult.row`): top-level comments take their stance toward the
        article, replies toward their parent."""
        from classifier.scoring import model_info, score_items

        return score_items(threads, self.predictor, model_info(self.predictor), self.policy)

    def _result(self, item: dict[str, str], prediction: Prediction) -> Result:
        # a target given here may be an article's lead or a parent comment: which, the
        # result does not say (its stance is toward the text ``target``)
        toward = "article" if item["target"] else "none"
        scored = Scored.of(item["text"], prediction, toward)
        return Result.of(scored, item["target"], self.policy.decide(prediction))
