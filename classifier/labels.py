"""The label names threadguard predicts, defined once.

Every other module refers to these tuples; outputs are keyed by these names,
never by index. A trained model stores the subset it actually learned.
"""

from __future__ import annotations

from typing import Final, Literal

#: Stance of a comment toward its target (the article for a top-level comment,
#: the parent comment for a reply).
STANCE_LABELS: Final[tuple[str, ...]] = ("support", "deny", "query", "comment", "unrelated")

#: Multi-label toxicity, named as Perspective API and Detoxify name them, plus spam.
TOXICITY_LABELS: Final[tuple[str, ...]] = (
    "toxicity",
    "severe_toxicity",
    "obscene",
    "threat",
    "insult",
    "identity_attack",
    "spam",
)

#: Labels of toxic spans (character ranges of a comment), named as the toxicity labels:
#: ``toxicity`` is any toxic span, the others its type (ToxicSpans' Insult,
#: Profane/Obscene, Identity based Attack, Threat).
SPAN_LABELS: Final[tuple[str, ...]] = ("toxicity", "insult", "obscene", "identity_attack", "threat")

#: Constructiveness (C3's crowd judgement) and the characteristics its raters gave as
#: reasons: responding to others, evidence, a personal story, a solution, specific points.
CONSTRUCTIVE_LABELS: Final[tuple[str, ...]] = (
    "constructive",
    "dialogue",
    "evidence",
    "personal_story",
    "solution",
    "specific_points",
)

STANCE_DESCRIPTIONS: Final[dict[str, str]] = {
    "support": "agrees with or confirms its target",
    "deny": "disagrees with or contradicts its target",
    "query": "asks for evidence or clarification",
    "comment": "neither takes a side nor asks",
    "unrelated": "off-topic for its target",
}


def check_labels(names: list[str] | tuple[str, ...], known: tuple[str, ...], kind: str) -> None:
    """Raise ``ValueError`` naming any label in ``names`` that is not in ``known``."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown {kind} label(s) {unknown}; known: {list(known)}")


#: Perspective API's attributes and the label that backs each: ``(kind, label)``, where
#: ``kind`` says which of a prediction's outputs holds it (``toxicity`` or ``constructive``).
#: Production attributes map onto the toxicity labels, which were named after them (PROFANITY
#: is ``obscene``, Jigsaw's and ToxicSpans' name for it). The experimental ones map onto a
#: C3 characteristic only where Perspective's definition asks the same question:
#: PERSONAL_STORY_EXPERIMENTAL ("a personal experience or story as a source of support") is
#: ``personal_story``; REASONING_EXPERIMENTAL ("makes specific or well-reasoned points")
#: is ``specific_points`` (C3 raters ticked it for comments addressing specific points of the
#: article), not ``evidence`` (which asks whether a claim is backed by a source: Perspective
#: has no attribute for that). docs/perspective.md gives the whole table and what is not served.
PERSPECTIVE_ATTRIBUTES: Final[dict[str, tuple[Literal["toxicity", "constructive"], str]]] = {
    "TOXICITY": ("toxicity", "toxicity"),
    "SEVERE_TOXICITY": ("toxicity", "severe_toxicity"),
    "INSULT": ("toxicity", "insult"),
    "PROFANITY": ("toxicity", "obscene"),
    "THREAT": ("toxicity", "threat"),
    "IDENTITY_ATTACK": ("toxicity", "identity_attack"),
    "PERSONAL_STORY_EXPERIMENTAL": ("constructive", "personal_story"),
    "REASONING_EXPERIMENTAL": ("constructive", "specific_points"),
}

#: Perspective's production attributes (each backed by a toxicity head).
PERSPECTIVE_PRODUCTION: Final[tuple[str, ...]] = (
    "TOXICITY",
    "SEVERE_TOXICITY",
    "INSULT",
    "PROFANITY",
    "THREAT",
    "IDENTITY_ATTACK",
)
