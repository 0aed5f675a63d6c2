"""What the model reads for one comment: the comment, its stance target and some context.

Defined once and used by the moderation service and ``threadguard score``, so
a comment scored in a batch file and the same comment posted to the service
get the same input:

- a **reply** (the parent comment's text is known) takes its stance toward the
  parent comment; the article title rides along as context;
- a **top-level comment** takes its stance toward the article: its title and
  first paragraph (:attr:`classifier.schema.Article.lead`), no extra context;
- with neither, the comment is scored alone (empty target).

Targets are cut to :data:`MAX_TARGET_WORDS` words before tokenising: the model
keeps only a few hundred tokens anyway, and a whole article pasted into a
request should not cost a whole article's tokenisation.
"""

from __future__ import annotations

import re
from itertools import islice
from typing import TypedDict

from classifier.schema import Article, Thread

#: Longest target (and context) passed on to the tokenizer, in words.
MAX_TARGET_WORDS = 300

_WORD = re.compile(r"\S+")


class CommentItem(TypedDict):
    """One model input, as :meth:`classifier.model.torch_predictor.Predictor.predict` takes it.

    ``reply`` says whether the comment answers another comment. A reply under an
    article with no title has no context, so the flag, not the context, tells the
    runtime (:func:`classifier.model.replies.is_reply`) to apply the model's reply offsets.
    """

    text: str
    target: str
    context: str
    reply: bool


def trim_words(text: str | None, max_words: int = MAX_TARGET_WORDS) -> str:
    """``text`` stripped and cut after its first ``max_words`` words (line breaks kept)."""
    if not text or max_words <= 0:
        return ""
    text = text.strip()
    last = next(islice(_WORD.finditer(text), max_words - 1, None), None)
    if last is None:  # fewer words than the limit
        return text
    return text[: last.end()]


def article_lead(title: str | None, text: str | None) -> str:
    """The article's title and first paragraph (what a top-level comment answers)."""
    return Article(id="", title=(title or "").strip(), body=text or "").lead


def comment_item(
    text: str,
    parent_text: str | None = None,
    article_title: str | None = None,
    article_text: str | None = None,
    *,
    max_target_words: int = MAX_TARGET_WORDS,
) -> CommentItem:
    """The model input for one comment (see the module docstring for the rules).

    ``parent_text`` that is empty or only whitespace counts as absent (a
    top-level comment).
    """
    title = (article_title or "").strip()
    if parent_text and parent_text.strip():
        return {
            "text": text,
            "target": trim_words(parent_text, max_target_words),
            "context": trim_words(title, max_target_words),
            "reply": True,
        }
    return {
        "text": text,
        "target": trim_words(article_lead(title, article_text), max_target_words),
        "context": "",
        "reply": False,
    }


def stance_target(item: CommentItem) -> str:
    """What the stance in a result is taken toward: ``parent``, ``article`` or ``none``."""
    if item["reply"]:
        return "parent"
    return "article" if item["target"] else "none"


def thread_items(thread: Thread, *, max_target_words: int = MAX_TARGET_WORDS) -> list[CommentItem]:
    """Model inputs for every comment of a thread, in order (parents resolved by id)."""
    by_id = {c.id: c.text for c in thread.comments}
    return [
        comment_item(
            c.text,
            by_id.get(c.parent_id) if c.parent_id is not None else None,
            thread.article.title,
            thread.article.body,
            max_target_words=max_target_words,
        )
        for c in thread.comments
    ]
