"""The hook's settings: :class:`ServiceSettings`, checked once, carried to worker processes.

One place defines every setting, its default and its help: ``threadguard serve`` builds one
option per field of :class:`ServiceSettings` (so a setting is added or changed here, and only
here), :func:`create_app` takes a
:class:`ServiceSettings`, and a uvicorn worker started with ``--workers N`` rebuilds them
from the environment (:meth:`ServiceSettings.from_env`): the public settings travel as JSON
in ``THREADGUARD_SERVICE_SETTINGS``, the secrets each in their own variable.

This module imports no web framework and no model code (the backend checks import
:mod:`classifier.model.constants` when :meth:`ServiceSettings.check_runnable` runs), so the command line
stays fast to start.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Annotated, ClassVar

from pydantic import Field, StrictBool

from classifier.config_model import ConfigModel

#: Environment variables the service reads its secrets from.
TOKEN_ENV = "THREADGUARD_TOKEN"
HMAC_SECRET_ENV = "THREADGUARD_HMAC_SECRET"
CORAL_SECRET_ENV = "THREADGUARD_CORAL_SECRET"
#: Environment variable carrying the (secret-free) settings to each uvicorn worker.
SETTINGS_ENV = "THREADGUARD_SERVICE_SETTINGS"


class ServiceConfigError(ValueError):
    """The service settings cannot work (e.g. no credentials and no ``no_auth``)."""


Count = Annotated[int, Field(strict=True, ge=1)]
Size = Annotated[int, Field(strict=True, ge=0)]
Seconds = Annotated[float, Field(gt=0)]


class ServiceSettings(ConfigModel):
    """Everything that configures the service (``threadguard serve`` options).

    Each field's description is its option's help. Secrets (``token``, ``hmac_secret``,
    ``coral_secret``) are never written by :meth:`to_env` into the settings variable; they
    travel in their own environment variables.
    """

    error_type: ClassVar[type[ValueError]] = ServiceConfigError
    #: The fields that are secrets: ``serve`` reads each from a file or its variable.
    SECRETS: ClassVar[tuple[str, ...]] = ("token", "hmac_secret", "coral_secret")

    model: str | None = Field(
        default=None,
        description="Model folder (saved by training); default: the installed default model.",
    )
    policy: str | None = Field(
        default=None,
        description="Moderation policy or calibrated thresholds (YAML); default: "
        "configs/moderation.yaml's built-in copy.",
    )
    token: str | None = Field(default=None, description=f"The bearer token; default: ${TOKEN_ENV}")
    hmac_secret: str | None = Field(
        default=None,
        description=f"The HMAC shared secret(s), comma-separated; default: ${HMAC_SECRET_ENV}",
    )
    coral_secret: str | None = Field(
        default=None,
        description=f"The signing secret(s) of Coral, comma-separated; default: ${CORAL_SECRET_ENV}",
    )
    no_auth: StrictBool = Field(
        default=False, description="Accept requests without credentials: local use only."
    )
    batching: StrictBool = Field(
        default=True,
        description="Micro-batch concurrent requests (--no-batching: score each on its own).",
    )
    batch_size: Count = Field(default=32, description="Most comments scored in one forward pass.")
    batch_wait_ms: Annotated[float, Field(ge=0)] = Field(
        default=3.0, description="Longest wait for concurrent requests to join a batch (ms)."
    )
    max_in_flight: Count = Field(default=64, description="Requests in flight before answering 503.")
    max_body_bytes: Count = Field(
        default=65_536, description="Largest request body (bytes), 413 above."
    )
    max_batch_body_bytes: Count = Field(
        default=1_048_576, description="Largest /v1/score request body (bytes), 413 above."
    )
    max_comment_chars: Count = Field(
        default=20_000, description="Longest comment (characters), 413 above."
    )
    max_batch: Count = Field(default=64, description="Most comments in one /v1/score request.")
    # see classifier.moderation.state.item_cost
    max_request_tokens: Count = Field(
        default=65_536,
        description="Work one request may ask of the model, in tokens: each comment counts its "
        "256-token windows and its stance pass; more is a 413 before any work.",
    )
    # fair scheduling: classifier.moderation.batching
    slice_tokens: Count = Field(
        default=2_048,
        description="A long request runs in slices of about this many tokens, taken in turn "
        "with the other requests'.",
    )
    request_timeout_s: Seconds = Field(
        default=10.0, description="Seconds a request may wait for the model (503 after)."
    )
    threads: Count | None = Field(
        default=None,
        description="Torch threads per worker (default: cores / workers - 1, at least 1, at most 4).",
    )
    batch_tokens: Count | None = Field(
        default=512,
        description="Most tokens (comments x longest) in one forward pass: bounds padding, "
        "which costs more than batching saves on a CPU.",
    )
    # checked by check_runnable, which imports the model's backend names
    backend: str = Field(default="auto", description="How the model runs.")
    cache_size: Size = Field(
        default=10_000,
        description="Recent comments kept in memory to resolve parent_id (a tenth as many "
        "articles); 0: none.",
    )
    cache_bytes: Size = Field(
        default=16 * 2**20,
        description="Most bytes the comment cache holds (the article cache: a quarter of it).",
    )
    body_timeout_s: Seconds = Field(
        default=5.0, description="Seconds a client has to send its whole body (408 after)."
    )
    max_unverified: Count = Field(
        default=256, description="Request bodies read at once before their credentials are checked."
    )
    docs: StrictBool | None = Field(
        default=None,
        description="Serve /docs, /redoc and /openapi.json, open to anyone (default: only "
        "with --no-auth).",
    )
    model_version: str | None = Field(
        default=None, description="What answers name the model (default: its computed version)."
    )
    feedback: str | None = Field(
        default=None,
        description="Append moderators' decisions (Perspective's comments:suggestscore, which "
        "Coral sends) to this JSONL file, for `threadguard calibrate --feedback`; without it "
        "suggestscore is refused.",
    )

    def check_runnable(self) -> None:
        """Raise :class:`ServiceConfigError` for settings the service cannot start with: no
        credentials (and no ``no_auth``), or a backend this install cannot run. Not checked
        when the settings are made: a default :class:`ServiceSettings` has no credentials."""
        from classifier.model import constants  # here, not above: the CLI imports these settings

        if not self.no_auth and not (self.token or self.hmac_secret or self.coral_secret):
            raise ServiceConfigError(
                "refusing to start without credentials: set a bearer token "
                f"({TOKEN_ENV} or --token-file), an HMAC shared secret ({HMAC_SECRET_ENV}) "
                f"or a Coral signing secret ({CORAL_SECRET_ENV}); or pass --no-auth, "
                "for local use only"
            )
        try:
            constants.resolve_backend(self.backend)
        except ValueError as exc:
            raise ServiceConfigError(str(exc)) from None
        if self.backend.startswith("onnx") and not constants.onnx_available():
            raise ServiceConfigError(
                f"backend {self.backend!r}: {constants.ONNX_MISSING}; or use --backend torch"
            )

    @property
    def docs_enabled(self) -> bool:
        """Whether ``/docs``, ``/redoc`` and ``/openapi.json`` are served: ``docs`` if set,
        else only without authentication (local use): they are open to anyone."""
        return self.no_auth if self.docs is None else self.docs

    def to_env(self) -> dict[str, str]:
        """Environment variables from which :meth:`from_env` rebuilds these settings."""
        env = {SETTINGS_ENV: json.dumps(self.model_dump(mode="json", exclude=set(self.SECRETS)))}
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
        secrets = set(data) & set(cls.SECRETS)
        if secrets:
            raise ServiceConfigError(f"secret(s) {sorted(secrets)} in {SETTINGS_ENV}")
        try:
            return cls.from_dict(
                {
                    **data,
                    "token": environ.get(TOKEN_ENV) or None,
                    "hmac_secret": environ.get(HMAC_SECRET_ENV) or None,
                    "coral_secret": environ.get(CORAL_SECRET_ENV) or None,
                }
            )
        except ServiceConfigError as exc:
            raise ServiceConfigError(f"{SETTINGS_ENV}: {exc}") from None


#: Every setting at its default: what ``threadguard serve`` offers when an option is not given.
DEFAULTS = ServiceSettings()


def default_threads(workers: int = 1) -> int:
    """Torch threads per worker: the cores left after one for the event loop, at most 4.

    On a 2-core machine that is 1: two intra-op threads on two cores shared with
    the HTTP loop (or anything else) stall each other, and a request then takes
    ten times longer instead of half as long.
    """
    return max(1, min(4, (os.cpu_count() or 1) // workers - 1))
