"""The demo blog: one article, its comment thread, and a moderator's queue.

Every comment a reader posts is sent to the threadguard moderation hook
(``POST /v1/moderate``, the same endpoint a real comment system calls) with the
article and the parent comment as context. The hook's decision sets what
happens to the comment:

- ``feature``: published at once and featured: shown first, in the article's
  "Featured comments" and at the top of its thread (a model with the
  constructiveness head and a policy with a feature rule);
- ``approve``: published at once;
- ``review``: held for a moderator, with the reasons (label, score, threshold,
  and the words the model flagged, when it gives toxic spans);
- ``reject``: not published.

The commenter sees the decision and its reasons right after posting. The
moderator's page (``/moderation``) lists held comments, their flagged words
highlighted, with every score, and lets a person approve or reject them. When the hook does not answer within the
timeout (down, overloaded, slow), the comment is held: the blog fails closed
and the page still answers (docs/moderation.md, "Fail open or fail closed").

Comments live in memory (:class:`CommentStore`); nothing is written to disk and
nothing leaves the machine. The moderator's page has no login: the demo listens
on localhost only.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from classifier.moderation.client import RequestRejected, ThreadguardClient

ARTICLE = {
    "id": "council-bus-budget",
    "title": "Council approves new bus budget after a long night of debate",
    "byline": "By the Riverside Courier's city desk",
    "paragraphs": [
        "The city council approved a revised public transport budget on Tuesday night, "
        "adding two bus routes to the east side and extending evening service on the "
        "number 4 line until midnight.",
        "The vote was seven to four. Supporters said the new routes would connect the "
        "Millbrook estate to the hospital and the college for the first time; opponents "
        "questioned whether ridership figures from before the pandemic still apply.",
        "The changes take effect in March. Fares stay the same for now, but the council "
        "asked the transport office to report on a fare review by the end of the year.",
    ],
}

#: Comments already on the article when the demo starts (published earlier).
SEED_COMMENTS = [
    ("Marta K.", "Finally a bus to the hospital from Millbrook. My mother will be glad.", None),
    (
        "dgreene",
        "Where do the ridership figures come from? The article says they are from 2019.",
        None,
    ),
    (
        "Courier city desk",
        "They are the transport office's 2019 counts; the report promises new ones in June.",
        "2",
    ),
]

#: The longest comment the form accepts (the hook's own limit is 20,000 characters).
MAX_COMMENT_CHARS = 5000
#: Seconds the blog waits for the hook before holding the comment (fail closed).
DEFAULT_HOOK_TIMEOUT = 2.0


@dataclass
class Comment:
    """A comment and what moderation made of it."""

    id: str
    author: str
    text: str
    parent_id: str | None = None
    #: published, held (waiting for a moderator) or rejected
    status: str = "published"
    decision: str | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    #: the hook's constructiveness scores and toxic spans (a model with those heads)
    constructive: dict[str, float] = field(default_factory=dict)
    spans: list[dict[str, Any]] = field(default_factory=list)
    #: the hook featured it (decision ``feature``): shown first
    featured: bool = False
    stance: dict[str, Any] | None = None
    model_version: str | None = None
    latency_ms: float | None = None
    #: why the hook gave no decision (down, slow, refused the request), if it did not
    hook_error: str | None = None
    #: who set the status last: "hook", "fallback", "moderator" or "seed"
    decided_by: str = "hook"
    created: float = field(default_factory=time.time)


class CommentStore:
    """The article's comments, in memory, safe to use from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._comments: dict[str, Comment] = {}
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        with self._lock:
            return str(next(self._ids))

    def add(self, comment: Comment) -> Comment:
        with self._lock:
            self._comments[comment.id] = comment
        return comment

    def get(self, comment_id: str) -> Comment | None:
        with self._lock:
            return self._comments.get(comment_id)

    def all(self) -> list[Comment]:
        with self._lock:
            return list(self._comments.values())

    def with_status(self, status: str) -> list[Comment]:
        return [c for c in self.all() if c.status == status]

    def set_status(self, comment_id: str, status: str) -> Comment | None:
        with self._lock:
            comment = self._comments.get(comment_id)
            if comment is not None:
                comment.status = status
                comment.decided_by = "moderator"
            return comment


@dataclass
class BlogSettings:
    """Where the blog finds the hook and how long it waits for it."""

    hook_url: str
    hook_token: str | None = None
    hook_timeout: float = DEFAULT_HOOK_TIMEOUT
    #: an ``httpx`` transport for the hook's requests (tests); default: the network
    transport: httpx.BaseTransport | None = None


STATUS_OF_DECISION = {
    "feature": "published",
    "approve": "published",
    "review": "held",
    "reject": "rejected",
}


def moderate(settings: BlogSettings, store: CommentStore, comment: Comment) -> Comment:
    """Ask the hook about ``comment`` and set its status from the answer (blocking).

    Fails closed: a hook that does not answer within ``hook_timeout`` (or at all,
    or refuses the request) leaves the comment held for a moderator.
    """
    parent = store.get(comment.parent_id) if comment.parent_id else None
    article = {
        "id": ARTICLE["id"],
        "title": ARTICLE["title"],
        "text": "\n\n".join(ARTICLE["paragraphs"]),
    }
    fields: dict[str, Any] = {"comment_id": comment.id, "author": comment.author}
    if parent is not None:
        fields["parent_id"] = parent.id
    try:
        with ThreadguardClient(
            settings.hook_url,
            token=settings.hook_token,
            timeout=settings.hook_timeout,
            retries=0,  # one attempt: the commenter never waits more than the timeout
            transport=settings.transport,
        ) as client:
            answer = client.moderate(
                comment.text,
                parent_text=parent.text if parent is not None else None,
                article=article,
                fallback="review",
                **fields,
            )
    except RequestRejected as exc:
        answer = {"decision": "review", "fallback": True, "error": f"the hook refused it: {exc}"}
    comment.decision = str(answer["decision"])
    comment.status = STATUS_OF_DECISION.get(comment.decision, "held")
    if answer.get("fallback"):
        comment.decided_by = "fallback"
        comment.hook_error = str(answer.get("error") or "the hook did not answer")
        return comment
    comment.featured = comment.decision == "feature"
    comment.reasons = list(answer.get("reasons") or [])
    comment.scores = dict(answer.get("scores") or {})
    comment.constructive = dict(answer.get("constructive") or {})
    comment.spans = list(answer.get("spans") or [])
    comment.stance = answer.get("stance")
    comment.model_version = answer.get("model_version")
    comment.latency_ms = answer.get("latency_ms")
    return comment


# --------------------------------------------------------------------------- HTML

_e = html.escape

STYLE = """
body { font-family: Georgia, 'DejaVu Serif', serif; max-width: 46rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; background: #fdfcf8; }
header.site { border-bottom: 3px double #999; margin-bottom: 1.5rem; display: flex;
              justify-content: space-between; align-items: baseline; }
header.site a { color: #444; font-family: sans-serif; font-size: .9rem; }
h1 { font-size: 1.9rem; line-height: 1.2; }
.byline { color: #666; font-style: italic; }
.comment { border-left: 3px solid #ccc; padding: .3rem .8rem; margin: .8rem 0; }
.comment .author { font-weight: bold; font-family: sans-serif; font-size: .9rem; }
.comment .reply { margin-left: 2rem; }
form label { display: block; font-family: sans-serif; font-size: .9rem; margin-top: .6rem; }
textarea, input, select { width: 100%; box-sizing: border-box; font-size: 1rem; padding: .3rem; }
button { font-size: 1rem; padding: .4rem 1rem; margin-top: .6rem; cursor: pointer; }
.notice { padding: .8rem 1rem; margin: 1rem 0; border-radius: 4px; font-family: sans-serif; }
.notice.published { background: #e6f4e6; border: 1px solid #7b7; }
.notice.held { background: #fff4d6; border: 1px solid #d9b44a; }
.notice.rejected { background: #fbe3e3; border: 1px solid #d77; }
.notice blockquote { font-family: Georgia, serif; margin: .5rem 0; color: #444; }
ul.reasons { margin: .3rem 0; }
table.scores { border-collapse: collapse; font-family: sans-serif; font-size: .85rem; }
table.scores td { padding: .1rem .5rem; }
.bar { display: inline-block; height: .7rem; background: #c66; vertical-align: middle; }
.held-comment { border: 1px solid #d9b44a; padding: .6rem 1rem; margin: 1rem 0;
                background: #fffbef; }
.held-comment form { display: inline; }
.muted { color: #777; font-family: sans-serif; font-size: .85rem; }
.badge { font-family: sans-serif; font-size: .75rem; background: #2a6f4e; color: #fff;
         padding: .05rem .4rem; border-radius: 3px; margin-left: .4rem; }
.comment.featured { border-left-color: #2a6f4e; }
#featured { background: #eef6f1; border: 1px solid #9cc8b0; padding: .2rem 1rem;
            margin: 1rem 0; }
mark.span { background: #f6c2c2; padding: 0 .1rem; }
.flagged { font-family: Georgia, serif; }
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        "<header class='site'><strong>The Riverside Courier</strong>"
        "<span><a href='/'>Article</a> · <a href='/moderation'>Moderation queue</a></span>"
        f"</header>{body}</body></html>"
    )


def _span_bounds(span: Mapping[str, Any], length: int) -> tuple[int, int] | None:
    """A span's ``(start, end)`` within a text of ``length`` characters, or ``None`` for one
    that is malformed or empty there (the hook's answer is data, not trusted markup)."""
    try:
        start, end = int(span["start"]), min(int(span["end"]), length)
    except (KeyError, TypeError, ValueError):
        return None
    return (start, end) if 0 <= start < end else None


def highlight(text: str, spans: Iterable[Mapping[str, Any]]) -> str:
    """``text`` escaped for HTML with each toxic span in a ``<mark class='span'>`` naming its
    label (spans out of range, or overlapping an earlier one, are left unmarked)."""
    marked = []
    for span in spans:
        bounds = _span_bounds(span, len(text))
        if bounds is not None:
            marked.append((*bounds, str(span.get("label", "toxicity"))))
    out, at = [], 0
    for start, end, label in sorted(marked):
        if start < at:
            continue
        out.append(_e(text[at:start]))
        out.append(f"<mark class='span' data-label='{_e(label)}'>{_e(text[start:end])}</mark>")
        at = end
    out.append(_e(text[at:]))
    return "".join(out)


def _flagged_html(comment: Comment, reason: Mapping[str, Any]) -> str:
    """The words behind a reason (its spans), quoted; empty when it names none."""
    words = []
    for span in reason.get("spans") or []:
        bounds = _span_bounds(span, len(comment.text))
        if bounds is not None:
            words.append(f"\u201c{_e(comment.text[bounds[0] : bounds[1]])}\u201d")
    if not words:
        return ""
    return f": <span class='flagged'>{', '.join(words)}</span>"


def _reasons_html(comment: Comment) -> str:
    if comment.hook_error:
        return (
            "<p class='hook-error'>The moderation service did not answer "
            f"(<span class='muted'>{_e(comment.hook_error)}</span>), so the comment waits "
            "for a moderator.</p>"
        )
    if not comment.reasons:
        return ""
    items = "".join(
        f"<li class='reason' data-label='{_e(str(r['label']))}'>"
        f"<strong>{_e(str(r['label']))}</strong> {float(r['score']):.2f} "
        f"(threshold {float(r['threshold']):.2f}, {_e(str(r['action']))})"
        f"{_flagged_html(comment, r)}</li>"
        for r in comment.reasons
    )
    return f"<ul class='reasons'>{items}</ul>"


def _scores_html(comment: Comment) -> str:
    if not comment.scores:
        return ""
    rows = "".join(
        f"<tr class='score' data-label='{_e(label)}'><td>{_e(label)}</td>"
        f"<td>{score:.2f}</td><td><span class='bar' style='width:{score * 8:.2f}rem'></span>"
        "</td></tr>"
        for label, score in sorted(comment.scores.items(), key=lambda kv: -kv[1])
    )
    return f"<table class='scores'>{rows}</table>"


def _notice_html(comment: Comment) -> str:
    shown = (
        _e(comment.text)
        if comment.status == "published"
        else highlight(comment.text, comment.spans)
    )
    quote = f"<blockquote>{shown}</blockquote>"
    if comment.status == "published" and comment.featured:
        text = (
            "<strong>Your comment is published and featured.</strong> It is shown first, "
            "among the featured comments."
        )
    elif comment.status == "published":
        text = "<strong>Your comment is published.</strong>"
    elif comment.status == "held":
        text = (
            "<strong>Your comment is held for review.</strong> A moderator will read it "
            "before it appears."
        )
    else:
        text = "<strong>Your comment was not published.</strong>"
    return (
        f"<div id='notice' class='notice {_e(comment.status)}' data-status='{_e(comment.status)}'"
        f" data-comment-id='{_e(comment.id)}'>{text}{quote}{_reasons_html(comment)}</div>"
    )


_BADGE = "<span class='badge'>Featured</span>"


def _featured_html(store: CommentStore) -> str:
    """The "Featured comments" box above the thread: the published comments the hook
    featured, each linked to its place in the thread; empty when there are none."""
    featured = [c for c in store.with_status("published") if c.featured]
    if not featured:
        return ""
    items = "".join(
        f"<div class='comment featured' data-id='{_e(c.id)}'>"
        f"<div class='author'>{_e(c.author)}{_BADGE}</div><p class='text'>{_e(c.text)}</p>"
        f"<a class='muted' href='#comment-{_e(c.id)}'>in the thread</a></div>"
        for c in featured
    )
    return f"<section id='featured'><h2>Featured comments</h2>{items}</section>"


def _thread_html(store: CommentStore) -> str:
    published = store.with_status("published")
    children: dict[str | None, list[Comment]] = {}
    for c in published:
        children.setdefault(c.parent_id, []).append(c)

    def render(parent: str | None) -> str:
        out = []
        # featured first among their siblings; otherwise in the order they were posted
        for c in sorted(children.get(parent, []), key=lambda c: not c.featured):
            kind, badge = ("comment featured", _BADGE) if c.featured else ("comment", "")
            out.append(
                f"<div class='{kind}' id='comment-{_e(c.id)}' data-id='{_e(c.id)}' "
                f"data-status='{_e(c.status)}' data-featured='{int(c.featured)}'>"
                f"<div class='author'>{_e(c.author)}{badge}</div>"
                f"<p class='text'>{_e(c.text)}</p>"
                f"<div class='reply'>{render(c.id)}</div></div>"
            )
        return "".join(out)

    count = len(published)
    return f"<h2 id='comments'>{count} comment{'s' if count != 1 else ''}</h2>" + render(None)


def _form_html(store: CommentStore) -> str:
    options = "<option value=''>the article</option>" + "".join(
        f"<option value='{_e(c.id)}'>{_e(c.author)}: {_e(c.text[:60])}</option>"
        for c in store.with_status("published")
    )
    return (
        "<form id='comment-form' method='post' action='/comments'>"
        "<h3>Leave a comment</h3>"
        "<label for='author'>Name</label>"
        "<input id='author' name='author' maxlength='80' required>"
        "<label for='parent_id'>In reply to</label>"
        f"<select id='parent_id' name='parent_id'>{options}</select>"
        "<label for='text'>Comment</label>"
        f"<textarea id='text' name='text' rows='5' maxlength='{MAX_COMMENT_CHARS}' "
        "required></textarea>"
        "<button id='submit' type='submit'>Post comment</button></form>"
    )


def article_page(store: CommentStore, posted: Comment | None) -> str:
    paragraphs = "".join(f"<p>{_e(p)}</p>" for p in ARTICLE["paragraphs"])
    body = (
        f"<article><h1>{_e(str(ARTICLE['title']))}</h1>"
        f"<p class='byline'>{_e(str(ARTICLE['byline']))}</p>{paragraphs}</article>"
        f"{_notice_html(posted) if posted else ''}"
        f"{_featured_html(store)}"
        f"<section id='thread'>{_thread_html(store)}</section>{_form_html(store)}"
    )
    return _page(str(ARTICLE["title"]), body)


def moderation_page(store: CommentStore) -> str:
    held = store.with_status("held")
    if held:
        cards = "".join(
            f"<div class='held-comment' id='held-{_e(c.id)}' data-id='{_e(c.id)}'>"
            f"<div><strong>{_e(c.author)}</strong> "
            f"<span class='muted'>decision: {_e(c.decision or '-')}"
            f"{', model ' + _e(c.model_version) if c.model_version else ''}</span></div>"
            f"<p class='text'>{highlight(c.text, c.spans)}</p>{_reasons_html(c)}{_scores_html(c)}"
            f"<form method='post' action='/moderation/{_e(c.id)}'>"
            "<button class='approve' name='action' value='approve'>Approve</button> "
            "<button class='reject' name='action' value='reject'>Reject</button></form></div>"
            for c in held
        )
    else:
        cards = "<p id='queue-empty' class='muted'>No comments are waiting.</p>"
    decided = [c for c in store.all() if c.decided_by != "seed"]
    rows = "".join(
        f"<tr data-id='{_e(c.id)}'><td>{_e(c.id)}</td><td>{_e(c.author)}</td>"
        f"<td>{_e(c.text[:80])}</td><td>{_e(c.decision or '-')}</td>"
        f"<td class='status'>{_e(c.status)}</td><td>{_e(c.decided_by)}</td></tr>"
        for c in reversed(decided)
    )
    log = (
        "<h2>Every comment posted</h2><table class='scores' id='log'><tr><th>id</th>"
        "<th>author</th><th>comment</th><th>hook</th><th>status</th><th>set by</th></tr>"
        f"{rows}</table>"
    )
    body = (
        f"<h1>Moderation queue</h1><section id='held'><h2>Held for review ({len(held)})</h2>"
        f"{cards}</section>{log}"
    )
    return _page("Moderation queue", body)


# --------------------------------------------------------------------------- the app


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def create_blog_app(settings: BlogSettings, store: CommentStore | None = None) -> FastAPI:
    """The blog as an ASGI app; comments are moderated by the hook at ``settings.hook_url``."""
    store = store if store is not None else seeded_store()
    app = FastAPI(title="threadguard demo blog", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.settings = settings

    @app.get("/", response_class=HTMLResponse)
    async def article(c: str | None = None) -> str:
        posted = store.get(c) if c else None
        return article_page(store, posted)

    @app.post("/comments")
    async def post_comment(request: Request) -> Response:
        form = await _form(request)
        text = form.get("text", "").strip()
        author = form.get("author", "").strip()[:80] or "Anonymous"
        parent_id = form.get("parent_id") or None
        if not text or len(text) > MAX_COMMENT_CHARS:
            return HTMLResponse(
                _page("Comment not accepted", "<p>A comment needs 1 to 5,000 characters.</p>"),
                status_code=422,
            )
        if parent_id is not None and store.get(parent_id) is None:
            parent_id = None
        comment = Comment(id=store.new_id(), author=author, text=text, parent_id=parent_id)
        await run_in_threadpool(moderate, settings, store, comment)
        store.add(comment)
        return RedirectResponse(f"/?c={comment.id}#notice", status_code=303)

    @app.get("/moderation", response_class=HTMLResponse)
    async def moderation() -> str:
        return moderation_page(store)

    @app.post("/moderation/{comment_id}")
    async def moderate_comment(comment_id: str, request: Request) -> Response:
        action = (await _form(request)).get("action")
        status = {"approve": "published", "reject": "rejected"}.get(action or "")
        if status is None or store.set_status(comment_id, status) is None:
            return JSONResponse({"detail": "unknown comment or action"}, status_code=404)
        return RedirectResponse("/moderation", status_code=303)

    @app.get("/api/comments")
    async def comments_json() -> list[dict[str, Any]]:
        """Every comment with its moderation record (for scripts and tests)."""
        return [c.__dict__ for c in store.all()]

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def seeded_store() -> CommentStore:
    """A store holding the article's earlier, published comments."""
    store = CommentStore()
    for author, text, parent in SEED_COMMENTS:
        store.add(
            Comment(
                id=store.new_id(),
                author=author,
                text=text,
                parent_id=parent,
                decided_by="seed",
            )
        )
    return store


# --------------------------------------------------------------------------- running it


def run_demo(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    hook_url: str | None = None,
    hook_token: str | None = None,
    hook_port: int = 8081,
    hook_timeout: float = DEFAULT_HOOK_TIMEOUT,
    model: str | None = None,
    policy: str | None = None,
    backend: str = "auto",
) -> None:
    """Serve the blog; unless ``hook_url`` names a running hook, start one (the shipped
    model, a fresh random token) on ``hook_port`` in the same process first."""
    import uvicorn

    servers: list[uvicorn.Server] = []
    if hook_url is None:
        from classifier.moderation import ServiceSettings, create_app, default_threads

        hook_token = secrets.token_urlsafe(24)
        hook_settings = ServiceSettings(
            model=model, policy=policy, token=hook_token, backend=backend, threads=default_threads()
        )
        hook = uvicorn.Server(
            uvicorn.Config(
                create_app(hook_settings), host=host, port=hook_port, log_level="warning"
            )
        )
        servers.append(hook)
        hook_url = f"http://{host}:{hook_port}"
    blog_settings = BlogSettings(
        hook_url=hook_url, hook_token=hook_token, hook_timeout=hook_timeout
    )
    blog = uvicorn.Server(
        uvicorn.Config(create_blog_app(blog_settings), host=host, port=port, log_level="warning")
    )
    servers.append(blog)

    async def main() -> None:
        tasks = []
        for server in servers:
            tasks.append(asyncio.create_task(server.serve()))
            while not server.started:  # the hook loads its model before it listens
                if tasks[-1].done():
                    await tasks[-1]  # start-up failed: raise its error
                    raise SystemExit(f"could not start the server on {server.config.port}")
                await asyncio.sleep(0.05)
        print(
            f"threadguard demo blog: http://{host}:{port}/  "
            f"(moderation queue: http://{host}:{port}/moderation; hook: {hook_url})",
            flush=True,
        )
        await asyncio.gather(*tasks)

    asyncio.run(main())
