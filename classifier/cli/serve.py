"""``threadguard serve``: run the moderation service (FastAPI on uvicorn)."""

from __future__ import annotations

import logging
import logging.config
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from classifier.cli._app import BackendChoice, BackendOption, app
from classifier.moderation.settings import (
    CORAL_SECRET_ENV,
    DEFAULTS,
    HMAC_SECRET_ENV,
    TOKEN_ENV,
)


def _read_secret(path: Path | None, env: str, what: str) -> str | None:
    if path is not None:
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise typer.BadParameter(f"cannot read the {what} file: {exc}") from None
        if not value:
            raise typer.BadParameter(f"the {what} file {path} is empty")
        return value
    return os.environ.get(env) or None


def _log_config(level: str) -> dict[str, Any]:
    """One format for the service's and uvicorn's lines, on stderr; others at WARNING."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            "classifier": {"level": level},
            "uvicorn": {"level": level},
            "uvicorn.access": {"level": "WARNING"},
        },
    }


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8080,
    model: Annotated[
        Path | None,
        typer.Option(
            help="Model folder (saved by training); default: the installed default model."
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            help="Moderation policy or calibrated thresholds (YAML); default: configs/moderation.yaml's built-in copy."
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (each loads its own model).")
    ] = 1,
    token_file: Annotated[
        Path | None,
        typer.Option(help="File holding the bearer token (default: $THREADGUARD_TOKEN)."),
    ] = None,
    hmac_secret_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the HMAC shared secret(s), comma-separated (default: $THREADGUARD_HMAC_SECRET)."
        ),
    ] = None,
    coral_secret_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding Coral's signing secret(s), comma-separated (default: $THREADGUARD_CORAL_SECRET)."
        ),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option("--no-auth", help="Accept requests without credentials: local use only."),
    ] = DEFAULTS.no_auth,
    no_batching: Annotated[
        bool,
        typer.Option("--no-batching", help="Score each request on its own (no micro-batching)."),
    ] = not DEFAULTS.batching,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Most comments scored in one forward pass.")
    ] = DEFAULTS.batch_size,
    batch_wait_ms: Annotated[
        float,
        typer.Option(min=0.0, help="Longest wait for concurrent requests to join a batch (ms)."),
    ] = DEFAULTS.batch_wait_ms,
    max_in_flight: Annotated[
        int, typer.Option(min=1, help="Requests in flight before answering 503.")
    ] = DEFAULTS.max_in_flight,
    max_body_bytes: Annotated[
        int, typer.Option(min=1, help="Largest request body (bytes), 413 above.")
    ] = DEFAULTS.max_body_bytes,
    max_comment_chars: Annotated[
        int, typer.Option(min=1, help="Longest comment (characters), 413 above.")
    ] = DEFAULTS.max_comment_chars,
    max_batch: Annotated[
        int, typer.Option(min=1, help="Most comments in one /v1/score request.")
    ] = DEFAULTS.max_batch,
    timeout: Annotated[
        float, typer.Option(min=0.001, help="Seconds a request may wait for the model (503 after).")
    ] = DEFAULTS.request_timeout_s,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Torch threads per worker (default: cores / workers - 1, at least 1, at most 4).",
        ),
    ] = DEFAULTS.threads,
    batch_tokens: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Most tokens (comments x longest) in one forward pass: bounds padding, "
            "which costs more than batching saves on a CPU.",
        ),
    ] = DEFAULTS.batch_tokens,
    backend: BackendOption = BackendChoice(DEFAULTS.backend),
    cache_size: Annotated[
        int,
        typer.Option(
            min=0,
            help="Recent comments kept in memory to resolve parent_id (a tenth as many articles); 0: none.",
        ),
    ] = DEFAULTS.cache_size,
    cache_bytes: Annotated[
        int,
        typer.Option(
            min=0,
            help="Most bytes the comment cache holds (the article cache: a quarter of it).",
        ),
    ] = DEFAULTS.cache_bytes,
    body_timeout: Annotated[
        float,
        typer.Option(min=0.001, help="Seconds a client has to send its whole body (408 after)."),
    ] = DEFAULTS.body_timeout_s,
    docs: Annotated[
        bool | None,
        typer.Option(
            "--docs/--no-docs",
            help="Serve /docs, /redoc and /openapi.json, open to anyone (default: only with --no-auth).",
        ),
    ] = DEFAULTS.docs,
    feedback: Annotated[
        Path | None,
        typer.Option(
            help="Append moderators' decisions (Perspective's comments:suggestscore, which "
            "Coral sends) to this JSONL file, for `threadguard calibrate --feedback`; "
            "without it suggestscore is refused.",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve moderation decisions over HTTP (see docs/moderation.md).

    Needs a bearer token, an HMAC secret or a Coral secret unless --no-auth is
    given. The model is loaded once at start-up; GET /readyz answers 200 once a
    warm-up inference has run.
    """
    level = log_level.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    token = _read_secret(token_file, TOKEN_ENV, "token")
    hmac_secret = _read_secret(hmac_secret_file, HMAC_SECRET_ENV, "HMAC secret")
    coral_secret = _read_secret(coral_secret_file, CORAL_SECRET_ENV, "Coral secret")
    if model is not None and not model.is_dir():
        raise typer.BadParameter(f"no model folder at {model}", param_hint="--model")

    import uvicorn

    import classifier.moderation.app as hook
    from classifier.moderation.settings import ServiceConfigError, ServiceSettings, default_threads

    if threads is None:
        threads = default_threads(workers)
    settings = ServiceSettings(
        model=str(model) if model is not None else None,
        policy=str(policy) if policy is not None else None,
        token=token,
        hmac_secret=hmac_secret,
        coral_secret=coral_secret,
        no_auth=no_auth,
        batching=not no_batching,
        batch_size=batch_size,
        batch_wait_ms=batch_wait_ms,
        max_in_flight=max_in_flight,
        max_body_bytes=max_body_bytes,
        max_comment_chars=max_comment_chars,
        max_batch=max_batch,
        request_timeout_s=timeout,
        threads=threads,
        batch_tokens=batch_tokens,
        backend=backend.value,
        cache_size=cache_size,
        cache_bytes=cache_bytes,
        body_timeout_s=body_timeout,
        docs=docs,
        feedback=str(feedback) if feedback is not None else None,
    )
    log_config = _log_config(level)
    logging.config.dictConfig(log_config)
    try:
        application = hook.create_app(settings)  # checks settings and policy before any model loads
    except ServiceConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--policy") from None
    common = {
        "host": host,
        "port": port,
        "log_level": log_level.lower(),
        "access_log": False,  # the service logs one line a request, with its id
        "log_config": log_config,  # also applied in each worker process
    }
    if workers == 1:
        uvicorn.run(application, **common)  # type: ignore[arg-type]
        return
    os.environ.update(settings.to_env())
    uvicorn.run(
        "classifier.moderation.app:create_app_from_env",
        factory=True,
        workers=workers,
        **common,  # type: ignore[arg-type]
    )
