"""The hook's settings: :class:`ServiceSettings`, checked once, carried to worker processes.

One place defines every setting and its default: ``threadguard serve`` builds its options
from :data:`DEFAULTS` (so a default changes here, and only here), :func:`create_app` takes a
:class:`ServiceSettings`, and a uvicorn worker started with ``--workers N`` rebuilds them
from the environment (:meth:`ServiceSettings.from_env`): the public settings travel as JSON
in ``THREADGUARD_SERVICE_SETTINGS``, the secrets each in their own variable.

This module imports no web framework and no model code (the backend checks import
:mod:`classifier.model.constants` when :meth:`ServiceSettings.validate` runs), so the command line
stays fast to start.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

#: Environment variables the service reads its secrets from.
TOKEN_ENV = "THREADGUARD_TOKEN"
HMAC_SECRET_ENV = "THREADGUARD_HMAC_SECRET"
CORAL_SECRET_ENV = "THREADGUARD_CORAL_SECRET"
#: Environment variable carrying the (secret-free) settings to each uvicorn worker.
SETTINGS_ENV = "THREADGUARD_SERVICE_SETTINGS"


class ServiceConfigError(ValueError):
    """The service settings cannot work (e.g. no credentials and no ``no_auth``)."""


@dataclass
class ServiceSettings:
    """Everything that configures the service (``threadguard serve`` options).

    Secrets (``token``, ``hmac_secret``, ``coral_secret``) are never written
    by :meth:`to_env` into the settings variable; they travel in their own
    environment variables. ``hmac_secret`` and ``coral_secret`` may list
    several secrets separated by commas (for rotation).
    """

    model: str | None = None
    policy: str | None = None
    token: str | None = None
    hmac_secret: str | None = None
    coral_secret: str | None = None
    no_auth: bool = False
    batching: bool = True
    batch_size: int = 32
    batch_wait_ms: float = 3.0
    max_in_flight: int = 64
    max_body_bytes: int = 65_536
    max_batch_body_bytes: int = 1_048_576
    max_comment_chars: int = 20_000
    max_batch: int = 64
    #: Work one request may ask of the model, in tokens: each comment counts its 256-token
    #: windows (a long comment is read in several) and its stance pass (see
    #: :func:`classifier.moderation.state.item_cost`); more is a 413 before any work.
    max_request_tokens: int = 65_536
    #: A long request is run in slices of about this many tokens, taken in turn with the
    #: other requests' (fair scheduling in :mod:`classifier.moderation.batching`).
    slice_tokens: int = 2_048
    request_timeout_s: float = 10.0
    threads: int | None = None
    batch_tokens: int | None = 512
    backend: str = "auto"
    cache_size: int = 10_000
    cache_bytes: int = 16 * 2**20
    body_timeout_s: float = 5.0
    max_unverified: int = 256
    docs: bool | None = None
    model_version: str | None = None
    #: Where ``comments:suggestscore`` appends moderators' decisions (JSONL); None: refused.
    feedback: str | None = None

    SECRETS = ("token", "hmac_secret", "coral_secret")

    def validate(self) -> None:
        """Raise :class:`ServiceConfigError` for settings the service cannot run with."""
        from classifier.model import constants  # here, not above: the CLI imports these settings

        if not self.no_auth and not (self.token or self.hmac_secret or self.coral_secret):
            raise ServiceConfigError(
                "refusing to start without credentials: set a bearer token "
                f"({TOKEN_ENV} or --token-file), an HMAC shared secret ({HMAC_SECRET_ENV}) "
                f"or a Coral signing secret ({CORAL_SECRET_ENV}); or pass --no-auth, "
                "for local use only"
            )
        for name in (
            "batch_size",
            "max_in_flight",
            "max_body_bytes",
            "max_batch_body_bytes",
            "max_comment_chars",
            "max_batch",
            "max_unverified",
            "max_request_tokens",
            "slice_tokens",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ServiceConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.batch_wait_ms < 0 or self.request_timeout_s <= 0 or self.body_timeout_s <= 0:
            raise ServiceConfigError(
                "batch_wait_ms must be >= 0, request_timeout_s and body_timeout_s > 0"
            )
        if self.batch_tokens is not None and self.batch_tokens < 1:
            raise ServiceConfigError(f"batch_tokens must be positive, got {self.batch_tokens}")
        if self.threads is not None and self.threads < 1:
            raise ServiceConfigError(f"threads must be positive, got {self.threads}")
        try:
            constants.resolve_backend(self.backend)
        except ValueError as exc:
            raise ServiceConfigError(str(exc)) from None
        if self.backend.startswith("onnx") and not constants.onnx_available():
            raise ServiceConfigError(
                f"backend {self.backend!r}: {constants.ONNX_MISSING}; or use --backend torch"
            )
        if self.cache_size < 0 or self.cache_bytes < 0:
            raise ServiceConfigError(
                f"cache_size and cache_bytes must be >= 0, got {self.cache_size}, {self.cache_bytes}"
            )

    @property
    def docs_enabled(self) -> bool:
        """Whether ``/docs``, ``/redoc`` and ``/openapi.json`` are served: ``docs`` if set,
        else only without authentication (local use): they are open to anyone."""
        return self.no_auth if self.docs is None else self.docs

    def to_env(self) -> dict[str, str]:
        """Environment variables from which :meth:`from_env` rebuilds these settings."""
        public = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in self.SECRETS
        }
        env = {SETTINGS_ENV: json.dumps(public)}
        for name, var in zip(
            self.SECRETS, (TOKEN_ENV, HMAC_SECRET_ENV, CORAL_SECRET_ENV), strict=True
        ):
            value = getattr(self, name)
            if value:
                env[var] = value
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        """Settings from ``THREADGUARD_SERVICE_SETTINGS`` (JSON) and the secret variables."""
        environ = os.environ if environ is None else environ
        data = json.loads(environ.get(SETTINGS_ENV) or "{}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ServiceConfigError(f"unknown setting(s) {unknown} in {SETTINGS_ENV}")
        data = {k: v for k, v in data.items() if k not in cls.SECRETS}
        return cls(
            **data,
            token=environ.get(TOKEN_ENV) or None,
            hmac_secret=environ.get(HMAC_SECRET_ENV) or None,
            coral_secret=environ.get(CORAL_SECRET_ENV) or None,
        )


#: Every setting at its default: what ``threadguard serve`` offers when an option is not given.
DEFAULTS = ServiceSettings()


def default_threads(workers: int = 1) -> int:
    """Torch threads per worker: the cores left after one for the event loop, at most 4.

    On a 2-core machine that is 1: two intra-op threads on two cores shared with
    the HTTP loop (or anything else) stall each other, and a request then takes
    ten times longer instead of half as long.
    """
    return max(1, min(4, (os.cpu_count() or 1) // workers - 1))
