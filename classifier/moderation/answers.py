"""What every answer of the hook carries from a prediction and a decision.

The pieces the endpoints share, so that ``/v1/moderate``, ``/v1/score``, Coral's metadata
and the WordPress answer say the same thing the same way: the stance and what it is
toward (:func:`stance`), the optional heads' ``constructive`` scores and toxic ``spans``
(:func:`heads`: each present only when the model gives it, so a model without those heads
answers as before), and the decision's reasons, each with the spans behind it
(:func:`spans_for_reason`, :func:`moderation`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from classifier.labels import SPAN_LABELS
from classifier.moderation.policy import Decision


def stance(prediction: Mapping[str, Any], target: str) -> dict[str, Any]:
    """The stance part of an answer: label, scores and ``target`` (parent, article, none)."""
    return {
        "label": prediction["stance"]["label"],
        "scores": prediction["stance"]["scores"],
        "target": target,
    }


#: Reasons for toxicity in general: every toxic span stands behind them.
_GENERAL_LABELS = frozenset({"toxicity", "severe_toxicity"})


def spans_for_reason(
    label: str, spans: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]] | None:
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
        return [s for s in spans if s.get("label") in (label, "toxicity")]
    return None


def _span_out(span: Mapping[str, Any], text: str) -> dict[str, Any]:
    """A span for a response: its offsets, label and score, and the words it covers."""
    start, end = int(span["start"]), int(span["end"])
    return {
        "start": start,
        "end": end,
        "label": str(span["label"]),
        "score": float(span["score"]),
        "text": text[max(0, start) : max(0, end)],
    }


def heads(prediction: Mapping[str, Any], text: str) -> dict[str, Any]:
    """The optional heads' part of a response: ``constructive`` and ``spans``, each only
    when the model gives it, so a model without those heads answers as before."""
    out: dict[str, Any] = {}
    if "constructive" in prediction:
        out["constructive"] = {str(k): float(v) for k, v in prediction["constructive"].items()}
    if "spans" in prediction:
        out["spans"] = [_span_out(s, text) for s in prediction["spans"]]
    return out


def _reasons(decision: Decision, spans: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The decision's reasons, each with its spans (:func:`spans_for_reason`) when the model
    gives spans and the label has any."""
    out = []
    for reason in decision.reasons:
        item = reason.to_dict()
        chosen = spans_for_reason(reason.label, spans) if spans is not None else None
        if chosen is not None:
            item["spans"] = chosen
        out.append(item)
    return out


def moderation(prediction: Mapping[str, Any], decision: Decision, text: str) -> dict[str, Any]:
    """``reasons`` (with their spans), ``scores``, and the optional ``constructive`` and
    ``spans``: the part of a response every moderating endpoint shares."""
    optional = heads(prediction, text)
    return {
        "reasons": _reasons(decision, optional.get("spans")),
        "scores": dict(decision.scores),
        **optional,
    }
