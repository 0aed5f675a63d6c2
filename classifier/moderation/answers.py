"""What every answer of the hook carries from a prediction and a decision.

The pieces the endpoints share, so that ``/v1/moderate``, ``/v1/score``, Coral's metadata
and the WordPress answer say the same thing the same way, each from the comment's
:class:`~classifier.schema.Scored` (the typed prediction, whose stance the answers carry as
it is): the optional heads' ``constructive`` scores and toxic ``spans`` with their words
(:func:`heads`: each present only when the model gives it, so a model without those heads
answers as before), and the decision's reasons, each with the spans behind it
(:func:`spans_for_reason`, :func:`moderation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from classifier.labels import SPAN_LABELS
from classifier.moderation.policy import Decision
from classifier.schema import Scored, Span

#: Reasons for toxicity in general: every toxic span stands behind them.
_GENERAL_LABELS = frozenset({"toxicity", "severe_toxicity"})


def spans_for_reason(label: str, spans: Sequence[Span]) -> list[Span] | None:
    """The spans that show a moderator why the rule for ``label`` triggered.

    - ``toxicity`` and ``severe_toxicity``: every span (each is toxic);
    - ``insult``, ``obscene``, ``identity_attack``, ``threat``: the spans of that type, and
      the spans of no decided type (labelled ``toxicity``: toxic words the model could not
      type, which may well be what the rule saw);
    - any other label (``spam``, a feature reason): ``None``, as no span head covers it.
    """
    if label in _GENERAL_LABELS:
        return list(spans)
    if label in SPAN_LABELS:
        return [s for s in spans if s.label in (label, "toxicity")]
    return None


def _span_out(span: Span, text: str) -> dict[str, Any]:
    """A span for a response: its fields, and the words it covers."""
    return {**span.model_dump(), "text": text[max(0, span.start) : max(0, span.end)]}


def heads(scored: Scored) -> dict[str, Any]:
    """The optional heads' part of a response: ``constructive`` and ``spans`` (each with its
    words), each only when the model gives it, so a model without those heads answers as
    before."""
    out: dict[str, Any] = {}
    if scored.constructive is not None:
        out["constructive"] = scored.constructive
    if scored.spans is not None:
        out["spans"] = [_span_out(s, scored.text) for s in scored.spans]
    return out


def _reasons(decision: Decision, scored: Scored) -> list[dict[str, Any]]:
    """The decision's reasons, each with its spans (:func:`spans_for_reason`) when the model
    gives spans and the label has any."""
    out = []
    for reason in decision.reasons:
        item = reason.model_dump()
        chosen = spans_for_reason(reason.label, scored.spans) if scored.spans is not None else None
        if chosen is not None:
            item["spans"] = [_span_out(s, scored.text) for s in chosen]
        out.append(item)
    return out


def moderation(scored: Scored, decision: Decision) -> dict[str, Any]:
    """``reasons`` (with their spans), ``scores``, and the optional ``constructive`` and
    ``spans``: the part of a response every moderating endpoint shares."""
    return {"reasons": _reasons(decision, scored), "scores": dict(decision.scores), **heads(scored)}
