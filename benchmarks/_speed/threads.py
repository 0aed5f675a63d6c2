"""The speed benchmark's thread-shaped workload: comment threads as ``threadguard score``
and the moderation hook see them, one article and its comment section.

Each thread is one article (an FNC-1 headline and its body, from a headline-body pair
FNC-1 marks as related, so that the title and the lead belong together) and ``size``
reader comments under it, drawn alike from the two news-comment corpora (C3, comments
under Globe and Mail opinion articles; ToxicSpans, Civil Comments posts). A share of
them (:data:`REPLY_SHARE`) are replies to an earlier comment of the same thread, picked
uniformly among the comments before it (the first comment always answers the article).
The corpora carry no reply structure (C3's ids are flat, ToxicSpans has no parents), so
the replies are placed, not observed: a third is an assumption about news sites, whose
comment sections are mostly top-level comments with shorter reply chains.

The model inputs are then made by the library itself
(:func:`classifier.targets.thread_items`), so the targets are exactly the ones it scores
with: the article's title and first paragraph for a top-level comment, the parent's
text (and the title as context) for a reply. Without the corpora, the articles and
comments are generated text of similar lengths (``benchmarks/load.py``), and the origin
says so.
"""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from _speed.workload import corpus_rows, sources

if TYPE_CHECKING:  # imported where used: speed.py imports this before a cold start's clock
    from classifier.schema import Thread
    from classifier.targets import CommentItem

#: Share of a thread's comments that reply to an earlier comment (an assumption: see above).
REPLY_SHARE = 1 / 3
#: The corpora whose comments fill the threads, drawn alike.
COMMENT_CORPORA = ("c3", "toxic_spans")
#: Comments per thread unless told otherwise (``--thread-size``).
THREAD_SIZE = 50


@dataclass(frozen=True)
class ThreadWork:
    """One thread and the model inputs the library makes of it, in comment order."""

    thread: Thread
    items: list[CommentItem]


def _corpus_sources(root: Path | None) -> tuple[list[tuple[str, str]], list[list[str]]]:
    """Articles (title, body) from FNC-1's related pairs; comment texts per corpus."""
    from classifier.labels import STANCE_LABELS

    unrelated = STANCE_LABELS.index("unrelated")
    articles = {
        r["text"]: r["target"]
        for split in ("train", "test")
        for r in corpus_rows("fnc1", root).get(split, [])
        if r["stance"] != unrelated and r["text"].strip()
    }
    comments = [
        sorted({r["text"] for rows in corpus_rows(name, root).values() for r in rows if r["text"]})
        for name in COMMENT_CORPORA
    ]
    return sorted((title, body) for body, title in articles.items()), comments


def _synthetic_sources(seed: int) -> tuple[list[tuple[str, str]], list[list[str]]]:
    """Generated articles and comments (``benchmarks/load.py``), for when the corpora are absent."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import load

    rng = random.Random(seed)
    articles = [(a["title"], a["text"]) for a in (load.article(rng) for _ in range(50))]
    return articles, [[load.comment_text(rng) for _ in range(2000)]]


def make_threads(
    n_comments: int,
    size: int = THREAD_SIZE,
    seed: int = 0,
    root: Path | None = None,
    reply_share: float = REPLY_SHARE,
) -> tuple[list[ThreadWork], str]:
    """``ceil(n_comments / size)`` threads of ``size`` comments, the same for the same seed
    and data; and where their text came from."""
    if size < 1:
        raise ValueError(f"thread size must be positive, got {size}")
    from classifier.schema import Article, Comment, Thread
    from classifier.targets import thread_items

    (articles, pools), origin = sources(_corpus_sources, _synthetic_sources, root, seed)
    rng = random.Random(seed)
    out = []
    for t in range(max(1, math.ceil(n_comments / size))):
        title, body = rng.choice(articles)
        comments: list[Comment] = []
        for c in range(size):
            parent = rng.choice(comments).id if comments and rng.random() < reply_share else None
            text = rng.choice(rng.choice(pools))
            comments.append(Comment(id=str(c + 1), text=text, parent_id=parent))
        article = Article(id=f"a{t}", title=title, body=body)
        thread = Thread(f"speed-{seed}-{t}", "speed benchmark", article, comments)
        out.append(ThreadWork(thread, thread_items(thread)))
    return out, origin


def without_targets(items: list[CommentItem]) -> list[CommentItem]:
    """The same comments with no target and no context: the stance model reads each alone."""
    return [{"text": it["text"], "target": "", "context": "", "reply": False} for it in items]
