"""Who may use the hook: bearer tokens and HMAC signatures, compared in constant time.

A request authenticates with one of:

- ``Authorization: Bearer <token>`` (``THREADGUARD_TOKEN``), checked from the headers alone;
- ``X-Threadguard-Signature: sha256=<hex HMAC-SHA256 of the raw body>``
  (``THREADGUARD_HMAC_SECRET``), which only the body can confirm;
- on ``/v1/coral``, Coral's own ``X-Coral-Signature`` (``THREADGUARD_CORAL_SECRET``).

Each secret may list several values separated by commas (old and new during a rotation).
Every comparison is :func:`hmac.compare_digest` over all the candidates, so the time an
answer takes tells nothing about how much of a token or signature was right. The order in
which these checks run against reading the body is the guard's (:mod:`.guard`); this module
only answers whether credentials match. It imports nothing but the standard library, and
the client (:mod:`.client`) signs with the same :func:`signature`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

#: The header carrying the body's HMAC signature (what the client sends, the hook verifies).
SIGNATURE_HEADER: Final = "x-threadguard-signature"
#: The header Coral Talk signs its external moderation requests with.
CORAL_SIGNATURE_HEADER: Final = "x-coral-signature"
#: The one path on which Coral's signature is accepted.
CORAL_PATH: Final = "/v1/coral"
#: What :meth:`Credentials.check_headers` answers when only the body can tell (a signature).
NEEDS_BODY: Final = "needs-body"
#: What is wrong with credentials that do not match (never which part failed).
INVALID: Final = "invalid credentials: the token or signature does not match"


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``: the signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(header: str | None, body: bytes, secrets: Sequence[str]) -> bool:
    """Whether any ``sha256=<hex>`` in ``header`` (comma-separated) signs ``body`` with a secret."""
    if not header or not secrets:
        return False
    expected = [signature(s, body).encode("ascii") for s in secrets]
    ok = False
    for part in header.split(","):
        given = part.strip().lower().encode("utf-8", "replace")
        for candidate in expected:
            ok |= hmac.compare_digest(candidate, given)
    return ok


def split_secrets(value: str | None) -> list[str]:
    """The secrets in a comma-separated setting (blank entries dropped)."""
    return [s.strip() for s in (value or "").split(",") if s.strip()]


@dataclass(frozen=True)
class Credentials:
    """The tokens and secrets the hook accepts (each possibly several, during a rotation);
    ``open`` (``--no-auth``) accepts every request."""

    tokens: tuple[str, ...] = ()
    hmac_secrets: tuple[str, ...] = ()
    coral_secrets: tuple[str, ...] = ()
    open: bool = False

    @classmethod
    def from_settings(
        cls,
        token: str | None,
        hmac_secret: str | None,
        coral_secret: str | None,
        *,
        no_auth: bool = False,
    ) -> Credentials:
        return cls(
            tuple(split_secrets(token)),
            tuple(split_secrets(hmac_secret)),
            tuple(split_secrets(coral_secret)),
            no_auth,
        )

    def check_headers(self, path: str, headers: Mapping[str, str]) -> str | None:
        """``None`` if the headers authenticate the request, :data:`NEEDS_BODY` if only a
        signature over the body can, else what is wrong with the credentials.

        ``headers`` are lower-cased names.
        """
        if self.open:
            return None
        authorization = headers.get("authorization", "")
        sig = headers.get(SIGNATURE_HEADER)
        coral_sig = headers.get(CORAL_SIGNATURE_HEADER) if path == CORAL_PATH else None
        if not (authorization or sig or coral_sig):
            return (
                "missing credentials: send 'Authorization: Bearer <token>' or "
                f"'{SIGNATURE_HEADER}: sha256=<HMAC-SHA256 of the body>'"
                + (f" or '{CORAL_SIGNATURE_HEADER}'" if path == CORAL_PATH else "")
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token:
            given = token.strip().encode("utf-8", "replace")
            ok = False
            for expected in self.tokens:
                ok |= hmac.compare_digest(expected.encode("utf-8"), given)
            if ok:
                return None
        if (sig and self.hmac_secrets) or (coral_sig and self.coral_secrets):
            return NEEDS_BODY
        return INVALID

    def check_signature(self, path: str, headers: Mapping[str, str], body: bytes) -> str | None:
        """``None`` if a signature header signs ``body``, else what is wrong."""
        if verify_signature(headers.get(SIGNATURE_HEADER), body, self.hmac_secrets):
            return None
        coral_sig = headers.get(CORAL_SIGNATURE_HEADER) if path == CORAL_PATH else None
        if coral_sig and verify_signature(coral_sig, body, self.coral_secrets):
            return None
        return INVALID
