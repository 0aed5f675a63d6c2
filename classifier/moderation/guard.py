"""The guard in front of every ``/v1/`` request: who, how much, and only then a slot.

A small ASGI middleware (:class:`Guard`) that checks, in this order (on ``/v1/`` and on
Perspective's ``/v1alpha1/``, whose errors :class:`~.perspective.GoogleErrors` then words
in Google's shape):

1. credentials that need no body (a bearer token, or on Perspective's ``/v1alpha1/`` routes
   the same token as ``?key=`` or ``X-Goog-Api-Key``; none at all is 401 at once, before a
   byte of the body is read);
2. the body, within its size limit (413) and a read deadline (408), with requests still
   unverified (signed ones) bounded apart from the model's slots (``max_unverified``);
3. a signature over the body (an HMAC-SHA256 of the raw body, or on ``/v1/coral``
   Coral's ``X-Coral-Signature``; 401);
4. that the body is JSON the app can read (UTF-8, not absurdly nested; 422);
5. and only then takes an in-flight slot, or answers 503 at once (with ``Retry-After``).

So a client without credentials can hold no slot and no body buffer, and a slow body
cannot hold anything longer than the deadline. The guard also gives every request its id
(a sane ``X-Request-Id``, else a fresh one, echoed in the answer) and logs one line per
request: id, route, status, outcome and latency, never the comment text.
:func:`request_id`, :func:`elapsed_ms` and :func:`note` read and write that per-request
record from a route.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request

from classifier.moderation.asgi import Receive, Send, send_json
from classifier.moderation.auth import NEEDS_BODY
from classifier.moderation.state import ServiceState
from classifier.schema import json_problem

logger = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


#: Path prefixes the guard protects: the hook's own API and Perspective's (``?key=`` too).
PERSPECTIVE = "/v1alpha1/"
GUARDED = ("/v1/", PERSPECTIVE)


def _query_key(scope: dict[str, Any]) -> str:
    """The ``key`` query parameter (Perspective's API key), or ``""``."""
    query = scope.get("query_string", b"").decode("latin-1")
    values = parse_qs(query).get("key")
    return values[-1] if values else ""


#: Deepest nesting of objects and lists accepted in a request body (ours nest 4 deep).
MAX_REQUEST_DEPTH = 32


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether parsed JSON nests more than ``limit`` levels (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return False


def body_problem(body: bytes) -> tuple[str, str] | None:
    """``(message, type)`` if ``body`` is not JSON the service can read, else ``None``.

    Checked before FastAPI parses the body, so that bytes that are not UTF-8 and
    JSON nested past the parser's recursion limit are a 422 like any other
    malformed JSON (FastAPI answers those with a 400).
    """
    if not body:
        return None  # FastAPI reports the missing fields
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8: byte {body[exc.start]:#04x} at offset {exc.start}", "utf8_invalid"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        return f"malformed JSON: {json_problem(exc)} at {where}", "json_invalid"
    except RecursionError:
        return "malformed JSON: nested too deeply", "json_too_deep"
    except ValueError as exc:  # e.g. an integer over Python's digit limit
        return f"malformed JSON: {exc}", "json_invalid"
    if _nests_deeper(value, MAX_REQUEST_DEPTH):
        return f"JSON nests deeper than {MAX_REQUEST_DEPTH} levels", "json_too_deep"
    return None


class Guard:
    """ASGI middleware for ``/v1/``: credentials, body limits and deadline, in-flight limit, logging.

    The order is the point: nothing is held for a client before it has shown
    credentials (a bearer token is checked from the headers; a signed request's
    body is read within the size limit and the deadline, in a pool of its own
    bounded by ``max_unverified``), and an in-flight slot is taken only once
    the request is authenticated and its body complete and readable.
    """

    def __init__(self, app: Any, state: ServiceState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        st = self.state
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given_id = headers.get("x-request-id", "")
        request_id = given_id if _REQUEST_ID.match(given_id) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {}).update(request_id=request_id, started=started)
        path: str = scope["path"]
        status = [500]

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (b"x-request-id", request_id.encode()),
                    ],
                }
            await send(message)

        if not path.startswith(GUARDED):
            await self.app(scope, receive, send_with_id)
            logger.debug("%s %s %s %d", request_id, scope["method"], path, status[0])
            return
        if path.startswith(PERSPECTIVE) and "authorization" not in headers:
            # Perspective's clients send their key in the query (?key=) or, Google's newer
            # ones, in X-Goog-Api-Key: the service's bearer tokens, checked the same way.
            key = _query_key(scope) or headers.get("x-goog-api-key", "")
            if key:
                headers["authorization"] = f"Bearer {key}"

        close = [(b"connection", b"close")]  # the body may be unread: end the connection
        # 1. Credentials from the headers, before any byte of the body is read.
        verdict = st.credentials.check_headers(path, headers)
        if verdict != NEEDS_BODY and verdict is not None:
            await self._unauthorized(send_with_id, request_id, scope, verdict)
            self._log(request_id, scope, status[0], started, "unauthorized")
            return
        # 2. The body, within its limit and deadline; unverified requests in their own pool.
        unverified = verdict == NEEDS_BODY
        if unverified:
            if st.unverified >= st.settings.max_unverified:
                await _reply_overloaded(
                    send_with_id, st.unverified, "signed requests being read",
                    st.settings.max_unverified, close,
                )  # fmt: skip
                self._log(request_id, scope, status[0], started, "overloaded")
                return
            st.unverified += 1
        try:
            body = await self._read_body(scope, receive, headers, send_with_id)
        finally:
            if unverified:
                st.unverified -= 1
        if body is None:  # answered 408/413, or the client left (logged as nginx's 499)
            code = status[0] if status[0] != 500 else 499
            self._log(request_id, scope, code, started, "body refused" if code != 499 else "left")
            return
        # 3. A signature over the body.
        if unverified and (problem := st.credentials.check_signature(path, headers, body)):
            await self._unauthorized(send_with_id, request_id, scope, problem)
            self._log(request_id, scope, status[0], started, "unauthorized")
            return
        # 4. JSON the app can read (UTF-8, bounded nesting): 422 like any malformed JSON.
        if (bad := body_problem(body)) is not None:
            message, kind = bad
            payload = {
                "detail": f"body: {message}",
                "errors": [{"field": "body", "message": message, "type": kind}],
            }
            await send_json(send_with_id, 422, payload)
            self._log(request_id, scope, status[0], started, "invalid")
            return
        # 5. Only now an in-flight slot.
        if st.in_flight >= st.settings.max_in_flight:
            await _reply_overloaded(
                send_with_id, st.in_flight, "requests in flight", st.settings.max_in_flight
            )
            self._log(request_id, scope, status[0], started, "overloaded")
            return
        st.in_flight += 1
        try:
            gone = await run_until_disconnect(self.app, scope, body, receive, send_with_id)
            # 499: the client closed the connection first (its model work was dropped)
            outcome = "client went away" if gone else scope["state"].get("decision")
            self._log(request_id, scope, 499 if gone else status[0], started, outcome)
        finally:
            st.in_flight -= 1

    async def _unauthorized(
        self, send: Send, request_id: str, scope: dict[str, Any], problem: str
    ) -> None:
        await _reply(
            send,
            401,
            problem,
            [(b"www-authenticate", b'Bearer realm="threadguard"'), (b"connection", b"close")],
        )
        logger.warning("%s %s %s 401: %s", request_id, scope["method"], scope["path"], problem)

    async def _read_body(
        self, scope: dict[str, Any], receive: Receive, headers: dict[str, str], send: Send
    ) -> bytes | None:
        """The whole body, or ``None`` once answered: 413 over the limit (declared or
        sent), 408 past the deadline; ``None`` without an answer if the client left."""
        settings = self.state.settings
        limit = (
            settings.max_batch_body_bytes
            if scope["path"] == "/v1/score"
            else settings.max_body_bytes
        )
        message = f"request body is over the limit of {limit} bytes"
        close = [(b"connection", b"close")]
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _reply(send, 413, message, close)
            return None
        chunks: list[bytes] = []

        async def read() -> bool:
            size = 0
            while True:
                event = await receive()
                if event["type"] == "http.disconnect":
                    return False
                if event["type"] != "http.request":
                    return True
                chunk = event.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _TooLarge
                chunks.append(chunk)
                if not event.get("more_body", False):
                    return True

        timeout = settings.body_timeout_s
        try:
            complete = await asyncio.wait_for(read(), timeout)
        except _TooLarge:
            await _reply(send, 413, message, close)
            return None
        except asyncio.TimeoutError:  # TimeoutError on 3.11+, not on 3.10
            await _reply(send, 408, f"the request body did not arrive within {timeout:g} s", close)
            return None
        return b"".join(chunks) if complete else None

    def _log(
        self,
        request_id: str,
        scope: dict[str, Any],
        status: int,
        started: float,
        outcome: str | None,
    ) -> None:
        # Never the comment text: id, route, status, outcome and latency only.
        logger.info(
            "%s %s %s %d %s %.1f ms",
            request_id,
            scope["method"],
            scope["path"],
            status,
            outcome or "-",
            (time.perf_counter() - started) * 1000,
        )


class _TooLarge(Exception):
    """The body grew past its limit while being read."""


async def _reply(
    send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send_json(send, status, {"detail": detail}, headers or ())


async def _reply_overloaded(
    send: Send,
    count: int,
    what: str,
    limit: int,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """503 with Retry-After: 1, naming what is full and its limit."""
    detail = f"overloaded: {count} {what} (limit {limit}); retry after 1 s"
    await _reply(send, 503, detail, [(b"retry-after", b"1"), *(headers or [])])


# --------------------------------------------------------------------------- per request


def request_id(request: Request) -> str:
    """The id the guard gave ``request`` (echoed in ``X-Request-Id`` and every log line)."""
    return str(request.scope.get("state", {}).get("request_id", ""))


def elapsed_ms(request: Request) -> float:
    """Milliseconds since the guard received ``request``."""
    started = request.scope.get("state", {}).get("started", time.perf_counter())
    return round((time.perf_counter() - started) * 1000, 2)


def note(request: Request, outcome: str) -> None:
    """Record the request's outcome (a decision, a count) for the guard's log line."""
    request.scope.setdefault("state", {})["decision"] = outcome


async def run_until_disconnect(
    app: Any, scope: dict[str, Any], body: bytes, receive: Receive, send: Send
) -> bool:
    """Run ``app`` on the body already read; True if the client went away first.

    The app gets ``body`` as its one request message. Meanwhile the connection is
    watched: a client that disconnects before its answer is complete has the app
    cancelled, so that its request stops waiting for the model and the batcher drops
    the work not yet done (:mod:`.batching`) instead of computing answers no one reads.
    """
    gone = asyncio.Event()
    responded = False

    async def replay() -> dict[str, Any]:
        nonlocal body
        if body is not None:
            message = {"type": "http.request", "body": body, "more_body": False}
            body = None  # type: ignore[assignment]
            return message
        await gone.wait()
        return {"type": "http.disconnect"}

    async def tracked(message: dict[str, Any]) -> None:
        nonlocal responded
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            responded = True
        await send(message)

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    task = asyncio.ensure_future(app(scope, replay, tracked))
    watcher = asyncio.ensure_future(watch())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task.done() or responded:
            await task
            return False
        task.cancel()  # the client left mid-request: stop waiting for the model
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True
    finally:
        watcher.cancel()
