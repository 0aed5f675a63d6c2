"""The demo blog's logic without a browser or a model: the hook's answers (canned by an
httpx transport, in the shapes ``/v1/moderate`` answers) decide each comment's fate."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from examples.blog.app import BlogSettings, create_blog_app, seeded_store


def answer(decision: str, reasons: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "request_id": "r1",
        "comment_id": "4",
        "decision": decision,
        "reasons": reasons or [],
        "scores": {"toxicity": 0.9 if reasons else 0.01, "insult": 0.8 if reasons else 0.01},
        "stance": {"label": "comment", "scores": {"comment": 1.0}, "target": "article"},
        "model_version": "fake",
        "latency_ms": 1.0,
    }


INSULT = {"label": "insult", "score": 0.8, "threshold": 0.5, "action": "review"}
SPAM = {"label": "spam", "score": 0.99, "threshold": 0.8, "action": "reject"}


def blog(handler: Any) -> tuple[TestClient, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []

    def respond(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/moderate"
        assert request.headers["authorization"] == "Bearer t0ken"
        body = json.loads(request.content)
        sent.append(body)
        return handler(body)

    settings = BlogSettings(
        hook_url="http://hook.invalid", hook_token="t0ken", transport=httpx.MockTransport(respond)
    )
    return TestClient(create_blog_app(settings, seeded_store())), sent


def post(client: TestClient, text: str, parent_id: str = "") -> str:
    response = client.post(
        "/comments",
        data={"author": "A", "text": text, "parent_id": parent_id},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client.get(response.headers["location"]).text


def statuses(client: TestClient) -> dict[str, str]:
    return {c["text"]: c["status"] for c in client.get("/api/comments").json()}


@pytest.mark.parametrize(
    ("decision", "reasons", "status", "shown"),
    [
        ("approve", None, "published", "Your comment is published"),
        ("review", [INSULT], "held", "held for review"),
        ("reject", [SPAM], "rejected", "was not published"),
    ],
)
def test_the_hooks_decision_sets_the_status(
    decision: str, reasons: list[dict[str, Any]] | None, status: str, shown: str
) -> None:
    client, sent = blog(lambda body: httpx.Response(200, json=answer(decision, reasons)))
    page = post(client, "Some comment")
    assert statuses(client)["Some comment"] == status
    assert shown in page
    for reason in reasons or []:
        assert f"data-label='{reason['label']}'" in page
    published = page.split("id='thread'", 1)[1]
    assert ("Some comment" in published) == (status == "published")
    # the article goes with the comment, so the hook reads it in context
    assert sent[0]["article"]["title"].startswith("Council approves")


def test_a_reply_carries_its_parent() -> None:
    client, sent = blog(lambda body: httpx.Response(200, json=answer("approve")))
    post(client, "I agree with Marta", parent_id="1")
    assert sent[0]["parent_id"] == "1"
    assert sent[0]["parent_text"].startswith("Finally a bus")


@pytest.mark.parametrize("status", [401, 413, 503])
def test_no_decision_from_the_hook_holds_the_comment(status: int) -> None:
    client, _ = blog(lambda body: httpx.Response(status, json={"detail": "no"}))
    page = post(client, "Held because the hook said no decision")
    assert statuses(client)["Held because the hook said no decision"] == "held"
    assert "did not answer" in page


def test_moderator_approves_and_rejects() -> None:
    client, _ = blog(lambda body: httpx.Response(200, json=answer("review", [INSULT])))
    post(client, "first held")
    post(client, "second held")
    ids = {c["text"]: c["id"] for c in client.get("/api/comments").json()}
    queue = client.get("/moderation").text
    assert f"id='held-{ids['first held']}'" in queue and "tr class='score'" in queue
    for text, action in (("first held", "approve"), ("second held", "reject")):
        response = client.post(
            f"/moderation/{ids[text]}", data={"action": action}, follow_redirects=False
        )
        assert response.status_code == 303
    assert statuses(client)["first held"] == "published"
    assert statuses(client)["second held"] == "rejected"
    assert "first held" in client.get("/").text.split("id='thread'", 1)[1]
    assert "No comments are waiting" in client.get("/moderation").text
    assert client.post("/moderation/999", data={"action": "approve"}).status_code == 404


def test_comment_text_is_escaped() -> None:
    client, _ = blog(lambda body: httpx.Response(200, json=answer("approve")))
    page = post(client, "<script>alert(1)</script> & <b>bold</b>")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in page


def test_empty_or_overlong_comments_are_refused() -> None:
    client, sent = blog(lambda body: httpx.Response(200, json=answer("approve")))
    assert client.post("/comments", data={"author": "A", "text": "  "}).status_code == 422
    assert client.post("/comments", data={"author": "A", "text": "x" * 5001}).status_code == 422
    assert sent == []


# --------------------------------------------------------------------------- the model's heads

FEATURE = {"label": "constructive", "score": 0.91, "threshold": 0.8, "action": "feature"}


def with_heads(
    decision: str, text: str, reasons: list[dict[str, Any]], words: dict[str, str]
) -> dict[str, Any]:
    """An answer from a model with the span and constructiveness heads: a span (label
    from ``words``) over each of those words in ``text``, each reason naming its own."""
    spans = []
    for word, label in words.items():
        start = text.index(word)
        spans.append(
            {"start": start, "end": start + len(word), "label": label, "score": 0.9, "text": word}
        )
    named = [
        {**r, "spans": [s for s in spans if r["label"] in ("toxicity", s["label"])]}
        if r["action"] != "feature"
        else r
        for r in reasons
    ]
    return {
        **answer(decision, named),
        "constructive": {"constructive": 0.91 if decision == "feature" else 0.1},
        "spans": spans,
    }


def test_a_featured_comment_is_shown_first() -> None:
    text = "The 2019 counts are in the second table of the report; new ones come in June."
    client, _ = blog(
        lambda body: httpx.Response(200, json=with_heads("feature", body["text"], [FEATURE], {}))
    )
    page = post(client, text)
    assert statuses(client)[text] == "published"
    assert "published and featured" in page
    featured = page.split("<section id='featured'>", 1)[1].split("</section>", 1)[0]
    assert "Featured comments" in featured and text in featured
    # in the thread, before the seed comments posted earlier, with its badge
    thread = page.split("id='thread'", 1)[1]
    assert thread.index(text) < thread.index("Finally a bus")
    assert "data-featured='1'" in thread and "class='badge'>Featured" in thread
    (record,) = [c for c in client.get("/api/comments").json() if c["text"] == text]
    assert record["featured"] is True and record["decision"] == "feature"


def test_no_featured_section_without_a_featured_comment() -> None:
    client, _ = blog(lambda body: httpx.Response(200, json=answer("approve")))
    page = post(client, "Just a comment")
    assert "id='featured'" not in page and "data-featured='1'" not in page


def test_held_comments_show_and_highlight_the_flagged_words() -> None:
    text = "You <b>idiot</b>, and the damn council too"
    toxicity = {"label": "toxicity", "score": 0.9, "threshold": 0.5, "action": "review"}
    reasons = [toxicity, INSULT]
    words = {"idiot": "insult", "damn": "obscene"}
    client, _ = blog(
        lambda body: httpx.Response(200, json=with_heads("review", body["text"], reasons, words))
    )
    notice = post(client, text)
    assert statuses(client)[text] == "held"
    # the commenter sees the words behind each reason
    assert "<strong>insult</strong>" in notice
    insult_item = notice.split("<li class='reason' data-label='insult'>", 1)[1].split("</li>", 1)[0]
    assert "\u201cidiot\u201d" in insult_item and "damn" not in insult_item
    toxicity_item = notice.split("<li class='reason' data-label='toxicity'>", 1)[1].split(
        "</li>", 1
    )[0]
    assert "\u201cidiot\u201d" in toxicity_item and "\u201cdamn\u201d" in toxicity_item
    # the moderator sees them highlighted in the comment, the rest still escaped
    queue = client.get("/moderation").text
    assert (
        "You &lt;b&gt;<mark class='span' data-label='insult'>idiot</mark>&lt;/b&gt;, and the "
        "<mark class='span' data-label='obscene'>damn</mark> council too"
    ) in queue


def test_malformed_spans_from_the_hook_are_ignored() -> None:
    bad = {
        **answer("review", [{**INSULT, "spans": [{"start": "x"}, {"start": 5, "end": 2}]}]),
        "spans": [{"start": -3, "end": 2}, {"end": 4}, {"start": 0, "end": 99, "label": "<i>"}],
    }
    client, _ = blog(lambda body: httpx.Response(200, json=bad))
    post(client, "short text")
    queue = client.get("/moderation").text
    assert "<mark class='span' data-label='&lt;i&gt;'>short text</mark>" in queue


def test_the_real_hook_with_the_heads_features_and_flags() -> None:
    """The blog against the hook itself (the fake model with the span and constructiveness
    heads, the feature rule), not canned answers: the response shapes fit."""
    from classifier.moderation import create_app
    from tests.test_service import (
        CONSTRUCTIVE,
        FEATURE_POLICY,
        TOKEN,
        HeadsPredictor,
        running,
        settings,
    )

    hook = create_app(settings(), predictor=HeadsPredictor(), policy=FEATURE_POLICY)
    with running(hook) as url:
        client = TestClient(create_blog_app(BlogSettings(hook_url=url, hook_token=TOKEN)))
        page = post(client, CONSTRUCTIVE)
        assert "published and featured" in page and "id='featured'" in page
        post(client, "You idiot")
        queue = client.get("/moderation").text
    assert "You <mark class='span' data-label='insult'>idiot</mark>" in queue
    assert "\u201cidiot\u201d" in queue
