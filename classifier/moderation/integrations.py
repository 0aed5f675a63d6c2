"""Comment systems' requests mapped onto the hook's one moderation chain, and back.

Coral Talk (its external moderation phase) and WordPress (a ``pre_comment_approved``
filter, via the plugin in ``integrations/wordpress/``) each send a comment in their own
shape and expect their own answer. Here, and only here, each request becomes a
:class:`~classifier.moderation.state.CommentInput` (HTML stripped, the fields whose
length is limited named as the client sent them) and the
:class:`~classifier.moderation.state.Moderated` outcome of
:meth:`~classifier.moderation.state.ServiceState.moderate` becomes that answer:

- Coral: ``APPROVED`` / ``SYSTEM_WITHHELD`` / ``REJECTED``, ``FLAG`` actions (toxic, spam),
  the ``FEATURED`` tag for a comment the policy features, and our findings in
  ``metadata.threadguard``;
- WordPress: ``approved`` (``1``, ``0`` to hold, ``'spam'`` or ``'trash'``), the decision
  with a featured comment as ``approve`` plus ``featured: true``, reasons and scores.

Adding an integration means two such functions and a route (see docs/architecture.md).
"""

from __future__ import annotations

import html
import re
from typing import Any, Literal

from classifier.moderation.answers import moderation
from classifier.moderation.policy import Decision
from classifier.moderation.schemas import ArticleIn, CoralRequest, CoralStory, WordPressRequest
from classifier.moderation.state import CommentInput, Moderated

_TAG = re.compile(r"<(?:[a-zA-Z/!][^>]*)>")

#: Coral's moderation status for each of our decisions.
CORAL_STATUS: dict[str, Literal["APPROVED", "SYSTEM_WITHHELD", "REJECTED"]] = {
    "feature": "APPROVED",
    "approve": "APPROVED",
    "review": "SYSTEM_WITHHELD",
    "reject": "REJECTED",
}


def strip_html(text: str) -> str:
    """Comment HTML (Coral's HTML format, WordPress's allowed tags) to plain text."""
    if "<" not in text and "&" not in text:
        return text
    text = re.sub(r"<br\s*/?>|</p\s*>", "\n", text, flags=re.IGNORECASE)
    return html.unescape(_TAG.sub(" ", text)).strip()


def _spam_labels(decision: Decision, actions: tuple[str, ...]) -> tuple[bool, bool]:
    """Whether the reasons with one of ``actions`` include spam, and anything else."""
    labels = {r.label for r in decision.reasons if r.action in actions}
    return "spam" in labels, bool(labels - {"spam"})


# --------------------------------------------------------------------------- Coral Talk


def coral_comment(body: CoralRequest) -> CommentInput | None:
    """The comment of Coral's request; ``None`` when there is nothing to moderate (an
    empty body once the HTML is stripped: the route answers 204)."""
    text = strip_html(body.comment.body)
    if not text.strip():
        return None
    story = body.story or CoralStory()
    return CommentInput(
        text,
        comment_id=body.comment.id,
        parent_id=body.comment.parentID,
        article=ArticleIn(id=story.id, url=story.url),
        checked=(("comment.body", text),),
    )


def coral_answer(outcome: Moderated, *, model_version: str, request_id: str) -> dict[str, Any]:
    """Coral's external moderation response for ``outcome``."""
    decision = outcome.decision
    spam, other = _spam_labels(decision, ("review", "reject"))
    actions = []
    if other:
        actions.append({"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"})
    if spam:
        actions.append({"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"})
    found = moderation(outcome.scored, decision)
    found.pop("scores")  # as before: Coral's metadata carries no scores
    return {
        "status": CORAL_STATUS[decision.decision],
        "actions": actions,
        # Coral's own tag for editors' picks: the comment shows in the Featured tab
        "tags": ["FEATURED"] if decision.decision == "feature" else [],
        "metadata": {
            "threadguard": {
                "decision": decision.decision,
                **found,
                "model_version": model_version,
                "request_id": request_id,
            }
        },
    }


# --------------------------------------------------------------------------- WordPress


def wordpress_comment(body: WordPressRequest) -> CommentInput:
    """The comment of a ``pre_comment_approved`` request, read against its parent comment
    or else its post (cached by post id and URL, as ``wp:<id>``)."""
    text = strip_html(body.comment_content)
    return CommentInput(
        text,
        parent_text=strip_html(body.parent_content) if body.parent_content else None,
        article=ArticleIn(
            id=body.comment_post_ID and f"wp:{body.comment_post_ID}",
            title=body.post_title,
            text=strip_html(body.post_content) if body.post_content else None,
            url=body.post_url,
        ),
        checked=(("comment_content", text), ("parent_content", body.parent_content)),
    )


def wordpress_answer(
    outcome: Moderated, *, model_version: str, request_id: str, latency_ms: float
) -> dict[str, Any]:
    """What the ``pre_comment_approved`` filter should return for ``outcome``."""
    decision = outcome.decision
    approved: Literal[1, 0, "spam", "trash"]
    if decision.decision in ("feature", "approve"):
        approved = 1
    elif decision.decision == "review":
        approved = 0
    else:
        approved = "spam" if _spam_labels(decision, ("reject",))[0] else "trash"
    # WordPress has no "featured" status, and plugins check for the three decisions:
    # a featured comment is approved, with featured: true (the plugin keeps it as meta).
    scored = outcome.scored
    extra = {"featured": decision.decision == "feature"} if scored.constructive is not None else {}
    return {
        "approved": approved,
        "decision": "approve" if decision.decision == "feature" else decision.decision,
        **extra,
        **moderation(scored, decision),
        "model_version": model_version,
        "request_id": request_id,
        "latency_ms": latency_ms,
    }
