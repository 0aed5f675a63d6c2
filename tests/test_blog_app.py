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
