"""A small client for the moderation service, with a timeout and retries.

>>> with ThreadguardClient("http://127.0.0.1:8080", token="...") as tg:  # doctest: +SKIP
...     result = tg.moderate("Great piece!", article_title="...", fallback="review")
...     result["decision"]
'approve'

Every call has a timeout (:data:`DEFAULT_TIMEOUT`, 2 s, per attempt). A
connection failure or a 502/503/504 answer is retried (``retries`` times,
with a short back-off, honouring ``Retry-After`` up to a second); a read
timeout is not retried, since a slow service gets slower when asked twice.
When the service cannot answer, :class:`ServiceUnavailable` is raised, or,
if the call gave a ``fallback`` decision, that decision is returned with
``"fallback": true`` (fail-open is ``fallback="approve"``, fail-closed is
``fallback="review"``; see docs/moderation.md). A 4xx answer raises
:class:`RequestRejected` with the service's message.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import httpx

# One definition of the header and the signature, shared with the hook (standard library only).
from classifier.moderation.auth import SIGNATURE_HEADER, signature

__all__ = [
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "SIGNATURE_HEADER",
    "RequestRejected",
    "ServiceUnavailable",
    "ThreadguardClient",
    "ThreadguardError",
    "signature",
]

#: Seconds a call waits for the service (connect + answer) before giving up.
DEFAULT_TIMEOUT = 2.0
#: Retries after a connection failure or a 502/503/504 answer.
DEFAULT_RETRIES = 2

_RETRY_STATUS = frozenset({502, 503, 504})


class ThreadguardError(Exception):
    """Base class of the client's errors."""


class ServiceUnavailable(ThreadguardError):
    """The service could not answer in time (timeout, connection failure, 5xx)."""


class RequestRejected(ThreadguardError):
    """The service refused the request (4xx): bad input, bad credentials, too large."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class ThreadguardClient:
    """Calls a threadguard moderation service over HTTP.

    Args:
        base_url: e.g. ``http://127.0.0.1:8080``.
        token: bearer token (``Authorization: Bearer``).
        hmac_secret: shared secret; each body is signed (``X-Threadguard-Signature``).
        timeout: seconds per attempt.
        retries: attempts after the first, for connection failures and 502/503/504.
        backoff: seconds before the first retry; doubles each time.
        transport: an ``httpx`` transport (tests).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        hmac_secret: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = 0.05,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.token = token
        self.hmac_secret = hmac_secret
        self.retries = max(0, retries)
        self.backoff = backoff
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)

    def __enter__(self) -> ThreadguardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ transport

    def request(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        sign: bool = True,
    ) -> httpx.Response:
        """Send a request (JSON ``payload`` or raw ``content``) with retries; any status returned.

        Raises :class:`ServiceUnavailable` when no answer came (after retries).
        """
        body = content
        if body is None and payload is not None:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        all_headers = {"content-type": "application/json"} if body is not None else {}
        if self.token:
            all_headers["authorization"] = f"Bearer {self.token}"
        if self.hmac_secret and sign:
            all_headers[SIGNATURE_HEADER] = signature(self.hmac_secret, body or b"")
        all_headers.update(headers or {})
        delay = self.backoff
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._http.request(method, path, content=body, headers=all_headers)
            except httpx.TimeoutException as exc:
                if isinstance(exc, httpx.ConnectTimeout) and not last:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise ServiceUnavailable(f"{method} {path}: timed out ({exc})") from exc
            except httpx.TransportError as exc:
                if not last:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise ServiceUnavailable(f"{method} {path}: {exc}") from exc
            if response.status_code in _RETRY_STATUS and not last:
                time.sleep(max(delay, _retry_after(response)))
                delay *= 2
                continue
            return response
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, payload: Any = None) -> dict[str, Any]:
        response = self.request(method, path, payload)
        if response.status_code >= 500:
            raise ServiceUnavailable(f"{method} {path}: {response.status_code} {_detail(response)}")
        if response.status_code >= 400:
            raise RequestRejected(response.status_code, _detail(response))
        if response.status_code == 204:
            return {}
        data: dict[str, Any] = response.json()
        return data

    # ------------------------------------------------------------------ API

    def moderate(
        self,
        text: str,
        *,
        parent_text: str | None = None,
        article_title: str | None = None,
        article_text: str | None = None,
        fallback: Literal["approve", "review", "reject"] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``POST /v1/moderate``: decision, reasons, scores and stance for one comment.

        Other request fields (``comment_id``, ``author``, ``parent_id``,
        ``article={...}``) go in ``fields``. With ``fallback``, an unavailable
        service gives ``{"decision": fallback, "fallback": True, "error": ...}``
        instead of :class:`ServiceUnavailable`.
        """
        payload: dict[str, Any] = {"text": text, **fields}
        if parent_text is not None:
            payload["parent_text"] = parent_text
        if article_title is not None or article_text is not None:
            article = dict(payload.get("article") or {})
            article.setdefault("title", article_title)
            article.setdefault("text", article_text)
            payload["article"] = article
        try:
            return self._json("POST", "/v1/moderate", payload)
        except ServiceUnavailable as exc:
            if fallback is None:
                raise
            return {"decision": fallback, "fallback": True, "error": str(exc)}

    def score(
        self,
        comments: list[dict[str, Any]],
        article: dict[str, Any] | None = None,
        *,
        sort: Literal["input", "constructive"] = "input",
    ) -> dict[str, Any]:
        """``POST /v1/score``: scores and stance for a batch of comments.

        ``sort="constructive"`` ranks them best first (most constructive first, each
        result with its ``index`` in ``comments``), e.g. to show a thread's best comments.
        """
        payload: dict[str, Any] = {"comments": comments}
        if article is not None:
            payload["article"] = article
        if sort != "input":
            payload["sort"] = sort
        return self._json("POST", "/v1/score", payload)

    def wordpress(self, commentdata: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/wordpress``: ``approved`` is what ``pre_comment_approved`` returns."""
        return self._json("POST", "/v1/wordpress", commentdata)

    def coral(self, request: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/coral`` with a Coral external moderation request (``{}`` for a 204)."""
        return self._json("POST", "/v1/coral", request)

    def policy(self) -> dict[str, Any]:
        """``GET /v1/policy``: the policy in force."""
        return self._json("GET", "/v1/policy")

    def healthy(self) -> bool:
        """Whether ``GET /healthz`` answers 200."""
        try:
            return self.request("GET", "/healthz").status_code == 200
        except ServiceUnavailable:
            return False

    def ready(self) -> bool:
        """Whether ``GET /readyz`` answers 200 (model loaded and warmed up)."""
        try:
            return self.request("GET", "/readyz").status_code == 200
        except ServiceUnavailable:
            return False

    def wait_ready(self, timeout: float = 60.0, interval: float = 0.1) -> None:
        """Poll ``/readyz`` until it answers 200; :class:`ServiceUnavailable` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self._http.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(interval)
        raise ServiceUnavailable(f"the service was not ready within {timeout:g} s")


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(1.0, float(response.headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail is not None else response.text[:200]
