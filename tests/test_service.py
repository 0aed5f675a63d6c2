"""The moderation service, over HTTP: a real uvicorn server on a loopback port, the real client.

Most tests inject a fake predictor (deterministic scores from keywords in the
comment) so that decisions are known; one runs the tiny random model from a
saved folder, with thresholds taken from its own scores. The ``slow`` tests
run the shipped default model (or the folder in ``THREADGUARD_TEST_MODEL``) with the
default policy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from classifier.cli import app as cli_app
from classifier.labels import CONSTRUCTIVE_LABELS, STANCE_LABELS, TOXICITY_LABELS
from classifier.model import constants
from classifier.model.config import ModelConfig
from classifier.model.constants import NoDefaultModelError
from classifier.model.network import ThreadguardModel
from classifier.model.torch_predictor import Predictor, load_model
from classifier.moderation import (
    MicroBatcher,
    Policy,
    ServiceConfigError,
    ServiceSettings,
    create_app,
)
from classifier.moderation.client import (
    RequestRejected,
    ServiceUnavailable,
    ThreadguardClient,
    signature,
)
from classifier.targets import comment_item
from tests.conftest import STRICT_POLICY

#: Loading a model sets torch's (process-wide) thread count: keep the test session's.
THREADS = torch.get_num_threads()

TOKEN = "test-token-123"
HMAC_SECRET = "hmac-secret-456"
CORAL_SECRET = "whsec_coral789"

BENIGN = "Thanks for the careful reporting, I learned a lot from this."
TOXIC = "You are an idiot and so is everyone who agrees with you."
THREAT = "I know where you live and I will kill you."
SPAM = "Buy cheap watches now!!! Click here: http://cheap-watches.example"


class FakePredictor:
    """Scores from keywords, like a perfect model; records every call; can be held on a gate."""

    toxicity_labels = TOXICITY_LABELS
    stance_labels = STANCE_LABELS

    def __init__(self, gate: threading.Event | None = None, delay: float = 0.0) -> None:
        self.gate = gate
        self.delay = delay
        self.calls: list[list[dict[str, Any]]] = []

    def predict(self, items: Any) -> list[Any]:
        items = [dict(i) for i in items]
        if self.gate is not None:
            assert self.gate.wait(20), "test gate never opened"
        if self.delay:
            time.sleep(self.delay)
        self.calls.append(items)
        return [self.one(i["text"]) for i in items]

    @staticmethod
    def one(text: str) -> dict[str, Any]:
        text = text.lower()
        tox = dict.fromkeys(TOXICITY_LABELS, 0.01)
        if "idiot" in text:
            tox.update(toxicity=0.95, insult=0.9)
        if "kill you" in text:
            tox.update(toxicity=0.97, threat=0.95, severe_toxicity=0.8)
        if "buy cheap" in text:
            tox.update(spam=0.99)
        stance = dict.fromkeys(STANCE_LABELS, 0.1)
        stance["support" if "agree" in text else "comment"] = 0.6
        return {
            "stance": {"label": max(stance, key=stance.__getitem__), "scores": stance},
            "toxicity": tox,
        }

    def items(self) -> list[dict[str, Any]]:
        return [item for call in self.calls for item in call]


#: Words the fake span head flags, with the type it gives them.
SPAN_WORDS = {"idiot": "insult", "kill": "threat", "damn": "obscene", "stupid": "toxicity"}
#: A comment the fake constructiveness head scores 0.9 (it cites a year).
CONSTRUCTIVE = (
    "The figures are the transport office's 2019 counts; its report promises new ones in "
    "June, so the routes could be reviewed then."
)


class HeadsPredictor(FakePredictor):
    """The fake model with the constructiveness and span heads: ``constructive`` 0.9 for a
    comment citing 2019 (else 0.2), and a span for each word of :data:`SPAN_WORDS`."""

    @staticmethod
    def one(text: str) -> dict[str, Any]:
        out = FakePredictor.one(text)
        level = 0.9 if "2019" in text else 0.2
        out["constructive"] = dict.fromkeys(CONSTRUCTIVE_LABELS, level)
        found = re.finditer("|".join(SPAN_WORDS), text, flags=re.IGNORECASE)
        out["spans"] = [
            {
                "start": m.start(),
                "end": m.end(),
                "label": SPAN_WORDS[m.group().lower()],
                "score": 0.9,
            }
            for m in found
        ]
        return out


#: STRICT_POLICY with the feature rule: constructive >= 0.8 and nothing held back.
FEATURE_POLICY = Policy.from_dict(
    {**STRICT_POLICY.to_dict(), "feature": {"label": "constructive", "threshold": 0.8}}
)


@contextmanager
def running(app: FastAPI, *, wait_ready: bool = True) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free loopback port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="on", log_config=None, access_log=False, log_level="info")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server did not start")
            if time.monotonic() > deadline:
                raise RuntimeError("the server took over 30 s to start")
            time.sleep(0.01)
        if wait_ready:
            with ThreadguardClient(url) as probe:
                probe.wait_ready(timeout=30)
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def settings(**kw: Any) -> ServiceSettings:
    base: dict[str, Any] = {
        "token": TOKEN,
        "hmac_secret": HMAC_SECRET,
        "coral_secret": CORAL_SECRET,
    }
    base.update(kw)
    return ServiceSettings(**base)


@pytest.fixture(scope="module")
def service() -> Iterator[tuple[str, FakePredictor, FastAPI]]:
    fake = FakePredictor()
    app = create_app(
        settings(max_comment_chars=500, max_batch=4), predictor=fake, policy=STRICT_POLICY
    )
    with running(app) as url:
        yield url, fake, app


@pytest.fixture
def client(service: tuple[str, FakePredictor, FastAPI]) -> Iterator[ThreadguardClient]:
    with ThreadguardClient(service[0], token=TOKEN, retries=0) as c:
        yield c


def raw(url: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        url + path,
        content=body,
        headers={"content-type": "application/json", **(headers or {})},
        timeout=10,
    )


# --------------------------------------------------------------------------- decisions


def test_benign_toxic_threat_and_spam_decisions(client: ThreadguardClient) -> None:
    benign = client.moderate(BENIGN, article_title="Budget approved", comment_id="c1")
    assert benign["decision"] == "approve" and benign["reasons"] == []
    assert benign["comment_id"] == "c1"
    assert set(benign["scores"]) == set(TOXICITY_LABELS)
    assert benign["stance"]["label"] == "comment" and benign["stance"]["target"] == "article"
    assert set(benign["stance"]["scores"]) == set(STANCE_LABELS)
    assert benign["model_version"] == "custom"
    assert benign["latency_ms"] >= 0 and re.fullmatch(r"[0-9a-f]{16}", benign["request_id"])

    toxic = client.moderate(TOXIC)
    assert toxic["decision"] == "review"
    assert [r["label"] for r in toxic["reasons"]] == ["toxicity", "insult"]
    assert toxic["reasons"][0] == {
        "label": "toxicity",
        "score": 0.95,
        "threshold": 0.8,
        "action": "review",
    }
    assert toxic["stance"]["target"] == "none"

    threat = client.moderate(THREAT)
    assert threat["decision"] == "reject"
    assert threat["reasons"][0]["label"] == "threat"

    spam = client.moderate(SPAM)
    assert spam["decision"] == "reject"
    assert [r["label"] for r in spam["reasons"]] == ["spam"]


def test_the_comment_is_scored_against_its_parent_or_the_article(
    client: ThreadguardClient, service: tuple[str, FakePredictor, FastAPI]
) -> None:
    fake = service[1]
    article = {"id": "a1", "title": "Budget approved", "text": "The council met.\nMore."}
    client.moderate("First!", comment_id="p1", article=article)
    assert fake.items()[-1] == {
        "text": "First!",
        "target": "Budget approved\nThe council met.",
        "context": "",
        "reply": False,
    }
    reply = client.moderate("I agree", parent_text="Great budget", article=article)
    assert reply["stance"] == {
        "label": "support",
        "scores": reply["stance"]["scores"],
        "target": "parent",
    }
    assert fake.items()[-1]["target"] == "Great budget"
    assert fake.items()[-1]["context"] == "Budget approved"
    # The article by id only, and the parent by id only: both from recent requests.
    client.moderate("Me too", parent_id="p1", article={"id": "a1"})
    assert fake.items()[-1] == {
        "text": "Me too",
        "target": "First!",
        "context": "Budget approved",
        "reply": True,
    }
    # A reply with no article has no context and is still marked as a reply.
    client.moderate("Not at all", parent_text="Great budget")
    assert fake.items()[-1] == {
        "text": "Not at all",
        "target": "Great budget",
        "context": "",
        "reply": True,
    }


def test_score_endpoint_answers_scores_only(client: ThreadguardClient) -> None:
    out = client.score(
        [{"text": BENIGN, "comment_id": "1"}, {"text": SPAM, "comment_id": 2}],
        article={"title": "Budget approved"},
    )
    assert [r["comment_id"] for r in out["results"]] == ["1", "2"]
    assert out["results"][1]["scores"]["spam"] == 0.99
    assert "decision" not in out["results"][0]
    assert out["results"][0]["stance"]["target"] == "article"
    assert client.score([])["results"] == []


def test_openapi_health_and_policy(client: ThreadguardClient, service: Any) -> None:
    url = service[0]
    # the schema and docs are open to anyone, so off unless asked for (tests/test_hostile_hook.py)
    for docs in ("/openapi.json", "/docs", "/redoc"):
        assert httpx.get(url + docs).status_code == 404
    assert httpx.get(url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(url + "/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert client.healthy() and client.ready()
    assert client.policy()["labels"]["spam"] == {"threshold": 0.9, "action": "reject"}


# --------------------------------------------------------------------------- auth


def test_authentication(service: tuple[str, FakePredictor, FastAPI]) -> None:
    url = service[0]
    body = json.dumps({"text": BENIGN}).encode()
    missing = raw(url, "/v1/moderate", body)
    assert missing.status_code == 401
    assert "missing credentials" in missing.json()["detail"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = raw(url, "/v1/moderate", body, {"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "invalid credentials" in wrong.json()["detail"]
    assert raw(url, "/v1/moderate", body, {"authorization": f"Bearer {TOKEN}"}).status_code == 200
    # HMAC over the raw body.
    good = {"x-threadguard-signature": signature(HMAC_SECRET, body)}
    assert raw(url, "/v1/moderate", body, good).status_code == 200
    other = {"x-threadguard-signature": signature(HMAC_SECRET, body + b" ")}
    assert raw(url, "/v1/moderate", body, other).status_code == 401
    assert (
        raw(url, "/v1/moderate", body, {"x-threadguard-signature": "sha256=zz"}).status_code == 401
    )
    # A Coral signature only counts on the Coral endpoint.
    coral_sig = {"x-coral-signature": signature(CORAL_SECRET, body)}
    assert raw(url, "/v1/moderate", body, coral_sig).status_code == 401
    # Malformed bodies from strangers get 401, not a parse error.
    assert raw(url, "/v1/moderate", b"{oops").status_code == 401
    with ThreadguardClient(url, hmac_secret=HMAC_SECRET) as signed:
        assert signed.moderate(SPAM)["decision"] == "reject"
    with (
        ThreadguardClient(url, token="wrong", retries=0) as bad,
        pytest.raises(RequestRejected) as info,
    ):
        bad.moderate(BENIGN)
    assert info.value.status == 401


def test_refuses_to_start_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ServiceConfigError, match="--no-auth"):
        create_app(ServiceSettings(), predictor=FakePredictor())
    for var in ("THREADGUARD_TOKEN", "THREADGUARD_HMAC_SECRET", "THREADGUARD_CORAL_SECRET"):
        monkeypatch.delenv(var, raising=False)
    result = CliRunner().invoke(cli_app, ["serve", "--port", "0"])
    assert result.exit_code == 2
    assert "refusing to start without credentials" in result.output
    assert "--no-auth" in result.output


def test_settings_travel_to_workers_without_secrets_in_the_settings_variable() -> None:
    original = settings(model="/m", batching=False, max_batch=7)
    env = original.to_env()
    assert TOKEN not in env["THREADGUARD_SERVICE_SETTINGS"]
    assert env["THREADGUARD_TOKEN"] == TOKEN
    assert ServiceSettings.from_env(env) == original


# --------------------------------------------------------------------------- limits


def test_oversized_and_malformed_bodies(service: tuple[str, FakePredictor, FastAPI]) -> None:
    url = service[0]
    auth = {"authorization": f"Bearer {TOKEN}"}
    huge = json.dumps({"text": "x" * 70_000}).encode()
    too_big = raw(url, "/v1/moderate", huge, auth)
    assert too_big.status_code == 413
    assert "over the limit of 65536 bytes" in too_big.json()["detail"]

    long_comment = raw(url, "/v1/moderate", json.dumps({"text": "y" * 501}).encode(), auth)
    assert long_comment.status_code == 413
    assert (
        long_comment.json()["detail"] == "text is 501 characters long; the limit is 500 characters"
    )

    batch = json.dumps({"comments": [{"text": "a"}] * 5}).encode()
    too_many = raw(url, "/v1/score", batch, auth)
    assert too_many.status_code == 413 and "the limit is 4" in too_many.json()["detail"]

    malformed = raw(url, "/v1/moderate", b'{"text": "unterminated', auth)
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "body"
    # the column is the string's first character, and json's "... starting at" is not doubled
    detail = "body: malformed JSON: Unterminated string starting at line 1 column 10"
    assert malformed.json()["detail"] == detail

    missing = raw(url, "/v1/moderate", b'{"comment_id": "1"}', auth)
    assert missing.status_code == 422
    assert missing.json()["detail"] == "text: Field required"

    nested = raw(url, "/v1/coral", b'{"action": "NEW", "comment": {}}', auth)
    assert nested.status_code == 422 and "comment.body: Field required" in nested.json()["detail"]

    wrong_type = raw(url, "/v1/moderate", b'{"text": ["a"]}', auth)
    assert wrong_type.status_code == 422 and wrong_type.json()["errors"][0]["field"] == "text"

    assert raw(url, "/v1/moderate", b"[1, 2]", auth).status_code == 422


def test_overload_answers_503_at_once_and_a_stuck_model_times_out() -> None:
    gate = threading.Event()
    gate.set()
    fake = FakePredictor(gate=gate)
    app = create_app(
        settings(max_in_flight=2, request_timeout_s=1.0), predictor=fake, policy=STRICT_POLICY
    )
    state = app.state.threadguard
    with running(app) as url, ThreadguardClient(url, token=TOKEN, retries=0, timeout=10) as c:
        gate.clear()
        results: list[Any] = []
        workers = [
            threading.Thread(
                target=lambda: results.append(c.request("POST", "/v1/moderate", {"text": "hi"}))
            )
            for _ in range(2)
        ]
        for w in workers:
            w.start()
        deadline = time.monotonic() + 10
        while state.in_flight < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.perf_counter()
        overloaded = c.request("POST", "/v1/moderate", {"text": "hi"})
        assert time.perf_counter() - started < 1.0
        assert overloaded.status_code == 503
        assert overloaded.headers["retry-after"] == "1"
        assert "overloaded" in overloaded.json()["detail"]
        for w in workers:
            w.join(10)
        # The model never answered: both held requests got 503 after the 1 s timeout.
        assert [r.status_code for r in results] == [503, 503]
        assert "did not answer within 1 s" in results[0].json()["detail"]
        gate.set()
        assert c.moderate(BENIGN)["decision"] == "approve"


# --------------------------------------------------------------------------- integrations


def coral_request(body: str, parent: str | None = None) -> dict[str, Any]:
    return {
        "action": "NEW",
        "comment": {"body": body, "parentID": parent},
        "author": {"id": "u1", "role": "COMMENTER"},
        "story": {"id": "s1", "url": "https://news.example/story"},
        "site": {"id": "site1"},
        "tenantID": "t1",
        "tenantDomain": "news.example",
    }


def post_coral(
    url: str, payload: dict[str, Any], secrets: list[str] | None = None
) -> httpx.Response:
    body = json.dumps(payload, indent=2).encode()  # Coral sends pretty-printed JSON
    header = ",".join(signature(s, body) for s in (secrets or [CORAL_SECRET]))
    return raw(url, "/v1/coral", body, {"x-coral-signature": header})


def test_coral_external_moderation_phase(service: tuple[str, FakePredictor, FastAPI]) -> None:
    url, fake = service[0], service[1]
    ok = post_coral(url, coral_request(f"<p>{BENIGN}</p>"))
    assert ok.status_code == 200
    assert ok.json()["status"] == "APPROVED" and ok.json()["actions"] == []
    assert fake.items()[-1]["text"] == BENIGN  # the HTML format is stripped

    toxic = post_coral(url, coral_request(TOXIC, parent="c9")).json()
    assert toxic["status"] == "SYSTEM_WITHHELD"
    assert toxic["actions"] == [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}]
    assert toxic["metadata"]["threadguard"]["decision"] == "review"

    spam = post_coral(url, coral_request(SPAM)).json()
    assert spam["status"] == "REJECTED"
    assert spam["actions"] == [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"}]

    threat = post_coral(url, coral_request(THREAT)).json()
    assert threat["status"] == "REJECTED"
    assert threat["actions"] == [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}]

    # Secret rotation: Coral signs with every active secret, comma-separated.
    assert post_coral(url, coral_request(BENIGN), ["old-secret", CORAL_SECRET]).status_code == 200
    bad = post_coral(url, coral_request(BENIGN), ["not-the-secret"])
    assert bad.status_code == 401
    assert post_coral(url, coral_request("<p> </p>")).status_code == 204


def test_wordpress_pre_comment_approved(client: ThreadguardClient, service: Any) -> None:
    fake = service[1]

    def commentdata(content: str, **extra: Any) -> dict[str, Any]:
        return {
            "comment_post_ID": 42,
            "comment_author": "Ann",
            "comment_author_email": "ann@example.org",
            "comment_author_url": "",
            "comment_content": content,
            "comment_type": "comment",
            "comment_parent": 0,
            "user_id": 0,
            "post_title": "Budget approved",
            "post_content": "<p>The council met.</p><p>More.</p>",
            **extra,
        }

    approved = client.wordpress(commentdata(BENIGN))
    assert approved["approved"] == 1 and approved["decision"] == "approve"
    assert fake.items()[-1]["target"] == "Budget approved\nThe council met."
    assert client.wordpress(commentdata(TOXIC))["approved"] == 0
    assert client.wordpress(commentdata(SPAM))["approved"] == "spam"
    assert client.wordpress(commentdata(THREAT))["approved"] == "trash"
    client.wordpress(commentdata("I agree", comment_parent=7, parent_content="Nice budget"))
    assert fake.items()[-1]["target"] == "Nice budget"


# --------------------------------------------------------------------------- heads

REASON_KEYS = {"label", "score", "threshold", "action"}


def test_a_model_without_the_heads_answers_as_before(
    client: ThreadguardClient, service: tuple[str, FakePredictor, FastAPI]
) -> None:
    """No constructive, spans, featured or index keys, not even null: the old answers."""
    answer = client.moderate(TOXIC, comment_id="c1")
    assert set(answer) == {
        "request_id", "comment_id", "decision", "reasons", "scores", "stance",
        "model_version", "latency_ms",
    }  # fmt: skip
    assert all(set(r) == REASON_KEYS for r in answer["reasons"])
    (result,) = client.score([{"text": TOXIC}])["results"]
    assert set(result) == {"comment_id", "scores", "stance"}
    wordpress = client.wordpress({"comment_content": TOXIC})
    assert set(wordpress) == {
        "approved", "decision", "reasons", "scores", "model_version", "request_id", "latency_ms",
    }  # fmt: skip
    assert all(set(r) == REASON_KEYS for r in wordpress["reasons"])
    coral = post_coral(service[0], coral_request(TOXIC)).json()
    assert set(coral) == {"status", "actions", "tags", "metadata"} and coral["tags"] == []
    assert set(coral["metadata"]["threadguard"]) == {
        "decision", "reasons", "model_version", "request_id",
    }  # fmt: skip
    # Sorting by constructiveness without the head keeps the order (and says where each was).
    ranked = client.score([{"text": "a"}, {"text": "b"}], article=None)
    assert [r.get("index") for r in ranked["results"]] == [None, None]
    by_score = client.request(
        "POST", "/v1/score", {"comments": [{"text": "a"}, {"text": "b"}], "sort": "constructive"}
    ).json()
    assert [r["index"] for r in by_score["results"]] == [0, 1]
    # A feature rule never fires without constructive scores.
    app = create_app(settings(), predictor=FakePredictor(), policy=FEATURE_POLICY)
    with running(app) as url, ThreadguardClient(url, token=TOKEN, retries=0) as old:
        assert old.moderate(CONSTRUCTIVE)["decision"] == "approve"
        assert "featured" not in old.wordpress({"comment_content": CONSTRUCTIVE})


@pytest.fixture(scope="module")
def heads_service() -> Iterator[str]:
    app = create_app(settings(docs=True), predictor=HeadsPredictor(), policy=FEATURE_POLICY)
    with running(app) as url:
        yield url


@pytest.fixture
def heads(heads_service: str) -> Iterator[ThreadguardClient]:
    with ThreadguardClient(heads_service, token=TOKEN, retries=0) as c:
        yield c


def spans_of(answer: dict[str, Any], label: str) -> list[str]:
    (reason,) = [r for r in answer["reasons"] if r["label"] == label]
    return [s["text"] for s in reason["spans"]]


def test_reasons_name_their_spans(heads: ThreadguardClient) -> None:
    text = "Damn, I will kill you, you stupid idiot."
    answer = heads.moderate(text)
    assert answer["decision"] == "reject"
    assert [s["text"] for s in answer["spans"]] == ["Damn", "kill", "stupid", "idiot"]
    for span in answer["spans"]:
        assert text[span["start"] : span["end"]] == span["text"]
        assert set(span) == {"start", "end", "label", "score", "text"}
    # toxicity: every span; a typed label: its own spans and the untyped ones
    assert spans_of(answer, "toxicity") == ["Damn", "kill", "stupid", "idiot"]
    assert spans_of(answer, "threat") == ["kill", "stupid"]
    assert spans_of(answer, "insult") == ["stupid", "idiot"]
    assert set(answer["constructive"]) == set(CONSTRUCTIVE_LABELS)
    # a label no span head covers has no spans key; a clean comment has no spans
    spam = heads.moderate(SPAM)
    assert spam["reasons"][0]["label"] == "spam" and "spans" not in spam["reasons"][0]
    benign = heads.moderate(BENIGN)
    assert benign["decision"] == "approve" and benign["spans"] == [] and benign["reasons"] == []


def test_a_constructive_comment_is_featured(heads: ThreadguardClient) -> None:
    answer = heads.moderate(CONSTRUCTIVE)
    assert answer["decision"] == "feature"
    assert answer["reasons"] == [
        {"label": "constructive", "score": 0.9, "threshold": 0.8, "action": "feature"}
    ]
    assert answer["constructive"]["constructive"] == 0.9
    # nothing held back is featured, however constructive
    held = heads.moderate(CONSTRUCTIVE + " You idiot.")
    assert held["decision"] == "review"
    assert [r["action"] for r in held["reasons"]] == ["review", "review"]


def test_coral_features_and_wordpress_approves_with_a_flag(
    heads: ThreadguardClient, heads_service: str
) -> None:
    coral = post_coral(heads_service, coral_request(f"<p>{CONSTRUCTIVE}</p>")).json()
    assert coral["status"] == "APPROVED" and coral["tags"] == ["FEATURED"]
    assert coral["actions"] == []
    meta = coral["metadata"]["threadguard"]
    assert meta["decision"] == "feature" and meta["constructive"]["constructive"] == 0.9
    toxic = post_coral(heads_service, coral_request("<p>You <b>idiot</b></p>")).json()
    assert toxic["status"] == "SYSTEM_WITHHELD" and toxic["tags"] == []
    # offsets index the text as scored: the HTML is stripped first
    assert [s["text"] for s in toxic["metadata"]["threadguard"]["spans"]] == ["idiot"]

    featured = heads.wordpress({"comment_content": f"<p>{CONSTRUCTIVE}</p>"})
    assert featured["approved"] == 1 and featured["decision"] == "approve"
    assert featured["featured"] is True
    assert featured["reasons"][0]["action"] == "feature"
    plain = heads.wordpress({"comment_content": BENIGN})
    assert plain["featured"] is False and plain["decision"] == "approve"
    held = heads.wordpress({"comment_content": "You <em>idiot</em>"})
    assert held["approved"] == 0 and held["featured"] is False
    assert spans_of(held, "insult") == ["idiot"]


def test_a_thread_ranked_best_first(heads: ThreadguardClient) -> None:
    comments = [
        {"text": "First!", "comment_id": "a"},
        {"text": CONSTRUCTIVE, "comment_id": "b"},
        {"text": "Me too", "comment_id": "c"},
    ]
    as_sent = heads.score(comments)["results"]
    assert [r["comment_id"] for r in as_sent] == ["a", "b", "c"]
    assert all("index" not in r and "constructive" in r and "spans" in r for r in as_sent)
    results = heads.score(comments, sort="constructive")["results"]
    assert [(r["comment_id"], r["index"]) for r in results] == [("b", 1), ("a", 0), ("c", 2)]
    bad = heads.request("POST", "/v1/score", {"comments": comments, "sort": "best"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "sort"


def test_the_openapi_schema_documents_the_new_fields(heads_service: str) -> None:
    schema = httpx.get(heads_service + "/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    models = schema["components"]["schemas"]
    assert set(models["SpanOut"]["required"]) == {"start", "end", "label", "score", "text"}
    assert "spans" in models["ReasonOut"]["properties"]
    assert "spans" not in models["ReasonOut"].get("required", [])
    assert "feature" in models["ReasonOut"]["properties"]["action"]["enum"]
    assert models["ModerateResponse"]["properties"]["decision"]["enum"] == [
        "feature", "approve", "review", "reject",
    ]  # fmt: skip
    assert models["WordPressResponse"]["properties"]["decision"]["enum"] == [
        "approve", "review", "reject",
    ]  # fmt: skip
    for name in ("ModerateResponse", "ScoreResult", "WordPressResponse"):
        assert {"constructive", "spans"} <= set(models[name]["properties"])
        assert not {"constructive", "spans"} & set(models[name]["required"])
    # every reference resolves
    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(schema))
    assert refs and set(refs) <= set(models)


# --------------------------------------------------------------------------- readiness


def test_readiness_before_and_after_warm_up() -> None:
    gate = threading.Event()
    app = create_app(settings(), predictor=FakePredictor(gate=gate), policy=STRICT_POLICY)
    with running(app, wait_ready=False) as url:
        assert httpx.get(url + "/healthz").status_code == 200
        before = httpx.get(url + "/readyz")
        assert before.status_code == 503
        assert before.json() == {
            "ready": False,
            "model_loaded": True,
            "warmed_up": False,
            "model_version": "custom",
        }
        gate.set()
        with ThreadguardClient(url) as probe:
            probe.wait_ready(timeout=10)
        assert httpx.get(url + "/readyz").json()["ready"] is True


# --------------------------------------------------------------------------- batching


def test_concurrent_requests_are_scored_together() -> None:
    def concurrent_batches(batching: bool) -> list[int]:
        fake = FakePredictor(delay=0.05)
        app = create_app(settings(batching=batching), predictor=fake, policy=STRICT_POLICY)
        with running(app) as url:
            warm = len(fake.calls)

            async def burst() -> list[int]:
                async with httpx.AsyncClient(
                    base_url=url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=10
                ) as http:
                    answers = await asyncio.gather(
                        *(http.post("/v1/moderate", json={"text": f"c{i}"}) for i in range(8))
                    )
                return [a.status_code for a in answers]

            assert asyncio.run(burst()) == [200] * 8
            return [len(call) for call in fake.calls[warm:]]

    batched = concurrent_batches(True)
    assert sum(batched) == 8 and max(batched) > 1
    alone = concurrent_batches(False)
    assert alone == [1] * 8


def test_a_lone_request_does_not_wait_for_company() -> None:
    """With nothing else in flight, the batcher runs at once even with a long max wait."""
    from concurrent.futures import ThreadPoolExecutor

    fake = FakePredictor()

    async def one() -> float:
        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(fake.predict, pool, max_wait_ms=2000, expected=lambda: 1)
            await batcher.start()
            started = time.perf_counter()
            (prediction,) = await batcher.submit([comment_item("hello")])
            elapsed = time.perf_counter() - started
            await batcher.stop()
        assert prediction["stance"]["label"] == "comment"
        return elapsed

    assert asyncio.run(one()) < 1.0


# --------------------------------------------------------------------------- logging


def test_comment_text_is_never_logged_at_info(
    client: ThreadguardClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret_text = "zebra-unique-phrase-91 you idiot"
    with caplog.at_level(logging.INFO):
        answer = client.moderate(secret_text, parent_text="parent-unique-phrase-17")
        client.score([{"text": secret_text}])
        client.wordpress({"comment_content": secret_text, "comment_author_email": "e@x.org"})
        time.sleep(0.05)  # the log line is written once the response is sent
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert any(answer["request_id"] in m and "review" in m for m in messages)
    for message in messages:
        assert "zebra-unique" not in message and "parent-unique" not in message
        assert "e@x.org" not in message


# --------------------------------------------------------------------------- client


def test_client_retries_503_then_falls_back() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            return httpx.Response(503, json={"detail": "busy"}, headers={"retry-after": "0"})
        return httpx.Response(200, json={"decision": "approve"})

    with ThreadguardClient(
        "http://tg", transport=httpx.MockTransport(handler), retries=2, backoff=0.001
    ) as c:
        assert c.moderate("hi")["decision"] == "approve"
    assert len(calls) == 3

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with ThreadguardClient(f"http://127.0.0.1:{port}", retries=1, backoff=0.001, timeout=1) as c:
        with pytest.raises(ServiceUnavailable):
            c.moderate("hi")
        held = c.moderate("hi", fallback="review")
        assert held["decision"] == "review" and held["fallback"] is True


# --------------------------------------------------------------------------- a real model folder


@pytest.fixture(scope="module")
def model_dir(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = ModelConfig(encoder=str(tiny_encoder_dir), max_length=64, min_target_tokens=16)
    path = tmp_path_factory.mktemp("models") / "tiny"
    ThreadguardModel.from_encoder(config).save_pretrained(path)
    return path


def test_a_saved_model_is_loaded_at_start_up(model_dir: Path, tmp_path: Path) -> None:
    texts = ["you idiot", "thanks for the report", "buy cheap now", "where is the proof"]
    expected = Predictor(load_model(model_dir)).predict([comment_item(t) for t in texts])
    scores = sorted((p["toxicity"]["toxicity"], t) for p, t in zip(expected, texts, strict=True))
    (low, _), (high, top) = scores[-2], scores[-1]
    assert high - low > 1e-4, "the random model gives these texts the same score"
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"labels:\n  toxicity: {{threshold: {(low + high) / 2}, action: review}}\n",
        encoding="utf-8",
    )
    app = create_app(
        ServiceSettings(
            model=str(model_dir), policy=str(policy), no_auth=True, threads=THREADS, backend="torch"
        )
    )
    with running(app) as url, ThreadguardClient(url) as c:
        answers = {t: c.moderate(t) for t in texts}
    assert {t: a["decision"] for t, a in answers.items()} == {
        t: "review" if t == top else "approve" for t in texts
    }
    assert answers[top]["reasons"][0]["score"] == pytest.approx(high, abs=1e-4)
    assert re.fullmatch(r"tiny-[0-9a-f]{12}", answers[top]["model_version"])


def test_the_backend_is_checked_and_named_in_the_version(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ServiceConfigError, match="unknown backend 'fp16'"):
        create_app(ServiceSettings(model=str(model_dir), no_auth=True, backend="fp16"))
    monkeypatch.setattr("classifier.model.constants.onnx_available", lambda: False)
    with pytest.raises(ServiceConfigError, match="pip install onnxruntime onnx"):
        create_app(ServiceSettings(model=str(model_dir), no_auth=True, backend="onnx"))
    app = create_app(ServiceSettings(model=str(model_dir), no_auth=True, backend="int8"))
    with running(app) as url, ThreadguardClient(url) as c:
        assert re.fullmatch(r"tiny-[0-9a-f]{12}-int8", c.moderate("Fine, thanks.")["model_version"])


def test_a_rule_the_model_lacks_stops_start_up(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    config = ModelConfig(
        encoder=str(tiny_encoder_dir), max_length=64, toxicity_labels=("toxicity",)
    )
    ThreadguardModel.from_encoder(config).save_pretrained(tmp_path / "m")
    app = create_app(ServiceSettings(model=str(tmp_path / "m"), no_auth=True, threads=THREADS))
    with pytest.raises(ValueError, match="which the model does not predict"):
        asyncio.run(_start(app))


def test_without_a_model_folder_the_default_models_error_surfaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(constants, "DEFAULT_MODEL_DIR", tmp_path / "not-installed")
    app = create_app(ServiceSettings(no_auth=True))
    with pytest.raises(NoDefaultModelError):
        asyncio.run(_start(app))


async def _start(app: FastAPI) -> None:
    async with app.router.lifespan_context(app):
        pass


# --------------------------------------------------------------------------- a real trained model

# the shipped default model, or another trained model folder named in THREADGUARD_TEST_MODEL
REAL_MODEL = os.environ.get("THREADGUARD_TEST_MODEL") or (
    str(constants.DEFAULT_MODEL_DIR)
    if (constants.DEFAULT_MODEL_DIR / "threadguard_config.json").exists()
    else None
)
needs_real_model = pytest.mark.skipif(
    not REAL_MODEL, reason="no default model installed and THREADGUARD_TEST_MODEL not set"
)


@pytest.fixture(scope="module")
def real_service() -> Iterator[str]:
    # The default policy, or calibrated thresholds for that model (THREADGUARD_TEST_POLICY).
    policy = os.environ.get("THREADGUARD_TEST_POLICY") or None
    app = create_app(
        ServiceSettings(model=REAL_MODEL, policy=policy, no_auth=True, threads=THREADS)
    )
    with running(app) as url:
        yield url


@pytest.mark.slow
@needs_real_model
@pytest.mark.parametrize(
    "text",
    [
        "Thanks for the thorough reporting, I learned a lot from this article.",
        "Good point. I had not thought about the cost to the council before.",
    ],
)
def test_real_model_approves_clearly_benign_comments(real_service: str, text: str) -> None:
    with ThreadguardClient(real_service, timeout=10) as c:
        answer = c.moderate(text, article_title="Council approves new budget")
    assert answer["decision"] == "approve", answer


@pytest.mark.slow
@needs_real_model
@pytest.mark.parametrize(
    "text",
    [
        "You are a worthless idiot and a disgusting piece of garbage.",
        "Shut up you stupid moron, nobody wants to hear your pathetic lies.",
    ],
)
def test_real_model_holds_or_rejects_clearly_toxic_comments(real_service: str, text: str) -> None:
    with ThreadguardClient(real_service, timeout=10) as c:
        answer = c.moderate(text, article_title="Council approves new budget")
    assert answer["decision"] in ("review", "reject"), answer
    assert any(r["label"] != "spam" for r in answer["reasons"])


@pytest.mark.slow
@needs_real_model
@pytest.mark.parametrize(
    "text",
    [
        "Check out my channel!!! Subscribe and click here http://bit.ly/free-gift-cards now",
        # v0.6's regression (spam 0.09); v0.6.1 trains on news-comment spam templates
        # (training/corpora/contrast.py), among them work-from-home offers like this one
        "Earn $500 a day working from home, visit www.easy-money.example to start today!!!",
    ],
)
def test_real_model_rejects_spam(real_service: str, text: str) -> None:
    with ThreadguardClient(real_service, timeout=10) as c:
        answer = c.moderate(text)
        wordpress = c.wordpress({"comment_content": text})
    assert answer["decision"] == "reject", answer
    assert any(r["label"] == "spam" for r in answer["reasons"])
    assert wordpress["approved"] == "spam"
