"""The hook's request and response models (pydantic): what each endpoint accepts and answers.

They are the contract with comment systems, published at ``/openapi.json``: requests are
validated strictly (every text field is :data:`classifier.schema.Text`, valid Unicode; ids
are :data:`classifier.schema.Id`, numbers or strings) and answers are checked against their
response model, which also documents each field. Optional fields (a model's
``constructive`` scores and ``spans``) are left out of an answer that does not set them
(the routes use ``response_model_exclude_unset``), so a model without those heads answers
as it always did.

- ``/v1/moderate``: :class:`CommentIn` -> :class:`ModerateResponse`;
- ``/v1/score``: :class:`ScoreRequest` -> :class:`ScoreResponse`;
- ``/v1/coral``: :class:`CoralRequest` -> :class:`CoralResponse` (Coral Talk's external
  moderation phase);
- ``/v1/wordpress``: :class:`WordPressRequest` -> :class:`WordPressResponse` (a
  ``pre_comment_approved`` filter).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from classifier.schema import Id, Reason, Span, Stance, Text


class _In(BaseModel):
    """Request models: every text field is :data:`~classifier.schema.Text` (a string of
    valid Unicode, never a number turned into one); ids are :data:`~classifier.schema.Id`
    (comment systems send them as numbers, WordPress, or strings, Coral)."""


class ArticleIn(_In):
    """The article a comment is posted under. Give ``title`` and ``text``; ``id``/``url``
    alone refer to an article whose text an earlier request carried (if still cached)."""

    id: Id | None = None
    title: Text | None = None
    text: Text | None = Field(
        default=None, description="Article body; its first paragraph is used."
    )
    url: Text | None = None


class CommentIn(_In):
    """One comment and its context."""

    text: Text = Field(min_length=1, description="The comment's text.")
    comment_id: Id | None = None
    author: Text | None = Field(default=None, description="Author name or id (never logged).")
    parent_id: Id | None = Field(default=None, description="Id of the comment this one replies to.")
    parent_text: Text | None = Field(
        default=None,
        description="Text of the comment this one replies to (stance is taken toward it).",
    )
    article: ArticleIn | None = None


class ScoreRequest(_In):
    """A batch of comments; ``article`` applies to those that do not name their own."""

    comments: list[CommentIn]
    article: ArticleIn | None = None
    sort: Literal["input", "constructive"] = Field(
        default="input",
        description="Order of the results: as sent, or most constructive first (each "
        "result then carries its 'index' in the request; with a model that gives no "
        "constructive scores the order stays as sent).",
    )


class SpanOut(Span):
    """A toxic span the model found: ``text[start:end]`` of the comment as scored (after
    HTML is stripped, on ``/v1/coral`` and ``/v1/wordpress``), which ``text`` repeats."""

    text: str = Field(description="The flagged words themselves.")


class ReasonOut(Reason):
    spans: list[SpanOut] | None = Field(
        default=None,
        description="The toxic spans behind a toxicity reason (see spans_for_reason); "
        "absent when the model gives no spans and for labels without spans (spam, feature).",
    )


#: The optional heads' fields of an answer (:func:`~classifier.moderation.answers.heads`),
#: typed and documented once: left out when the model does not give them.
Constructive = Annotated[
    dict[str, float] | None,
    Field(description="Constructiveness by label, when the model gives it (else absent)."),
]
Spans = Annotated[
    list[SpanOut] | None,
    Field(description="Every toxic span, when the model gives them (else absent)."),
]


class ModerateResponse(BaseModel):
    request_id: str
    comment_id: str | None
    decision: Literal["feature", "approve", "review", "reject"] = Field(
        description="feature: approved and worth showing first (the policy's feature rule); "
        "approve; review: hold for a moderator; reject."
    )
    reasons: list[ReasonOut]
    scores: dict[str, float]
    constructive: Constructive = None
    spans: Spans = None
    stance: Stance
    model_version: str
    latency_ms: float


class ScoreResult(BaseModel):
    comment_id: str | None
    index: int | None = Field(
        default=None,
        description="The comment's position in the request (only with sort=constructive).",
    )
    scores: dict[str, float]
    constructive: Constructive = None
    spans: Spans = None
    stance: Stance


class ScoreResponse(BaseModel):
    request_id: str
    results: list[ScoreResult]
    model_version: str
    latency_ms: float


class CoralComment(_In):
    body: Text
    parentID: Id | None = None
    id: Id | None = None


class CoralAuthor(_In):
    id: Id | None = None
    role: Text | None = None
    username: Text | None = None


class CoralStory(_In):
    id: Id | None = None
    url: Text | None = None


class CoralSite(_In):
    id: Id | None = None


class CoralRequest(_In):
    """Coral Talk's external moderation request (``action``, ``comment``, ``author``, ``story``...)."""

    action: Literal["NEW", "EDIT"]
    comment: CoralComment
    author: CoralAuthor | None = None
    story: CoralStory | None = None
    site: CoralSite | None = None
    tenantID: Id | None = None
    tenantDomain: Text | None = None


class CoralAction(BaseModel):
    actionType: Literal["FLAG"] = "FLAG"
    reason: Literal["COMMENT_DETECTED_TOXIC", "COMMENT_DETECTED_SPAM"]


class CoralResponse(BaseModel):
    """Coral's external moderation response; ``metadata`` is ours (Coral may drop it)."""

    status: Literal["APPROVED", "PREMOD", "REJECTED", "SYSTEM_WITHHELD"]
    actions: list[CoralAction]
    tags: list[str] = Field(
        default=[], description="Coral comment tags: FEATURED for a comment the policy features."
    )
    metadata: dict[str, Any] = {}


class WordPressRequest(_In):
    """The fields of a WordPress ``pre_comment_approved`` filter's ``$commentdata``,
    plus the post and parent text the plugin adds."""

    comment_content: Text = Field(min_length=1)
    comment_author: Text | None = None
    comment_author_email: Text | None = None
    comment_author_url: Text | None = None
    comment_author_IP: Text | None = None
    comment_type: Text | None = None
    comment_parent: Id | None = Field(default=None, description="Parent comment id; 0 for none.")
    comment_post_ID: Id | None = None
    user_id: Id | None = None
    post_title: Text | None = None
    post_content: Text | None = None
    post_url: Text | None = None
    parent_content: Text | None = Field(
        default=None, description="Text of the parent comment, if any."
    )


class WordPressResponse(BaseModel):
    approved: Literal[1, 0, "spam", "trash"] = Field(
        description="What pre_comment_approved should return: 1, 0 (hold), 'spam' or 'trash'."
    )
    decision: Literal["approve", "review", "reject"] = Field(
        description="A featured comment is 'approve' here, with featured: true (plugins "
        "written for the three decisions keep working)."
    )
    featured: bool | None = Field(
        default=None,
        description="Whether the policy's feature rule picked the comment; present when the "
        "model gives constructive scores.",
    )
    reasons: list[ReasonOut]
    scores: dict[str, float]
    constructive: Constructive = None
    spans: Spans = None
    model_version: str
    request_id: str
    latency_ms: float
