"""The moderation hook: a FastAPI app that scores comments and applies the policy.

Build it with :func:`create_app` (``threadguard serve`` runs it on uvicorn; with
``--workers N`` each worker builds it with :func:`create_app_from_env`). The model is
loaded once, at start-up (the app's lifespan); a warm-up inference then runs in the
background and ``GET /readyz`` answers 200 once it is done.

Endpoints (details in ``docs/moderation.md`` and at ``/openapi.json``):

- ``POST /v1/moderate``: one comment with its context -> decision (``feature``,
  ``approve``, ``review``, ``reject``), reasons, scores, stance, model version,
  latency;
- ``POST /v1/score``: a bounded batch of comments -> scores and stance only, in
  order or (``sort=constructive``) most constructive first;
- ``POST /v1/coral``: Coral Talk's external moderation phase (a featured comment
  is approved with Coral's ``FEATURED`` tag);
- ``POST /v1/wordpress``: the answer a ``pre_comment_approved`` filter returns
  (a featured comment is approved, with ``featured: true``);
- ``GET /v1/policy``: the policy in force;
- ``GET /healthz`` (alive), ``GET /readyz`` (model loaded and warmed up);
- Perspective API's protocol (:mod:`.perspective`, docs/perspective.md):
  ``POST /v1alpha1/comments:analyze``, ``POST /v1alpha1/comments:suggestscore`` (stored
  with ``--feedback FILE``) and ``GET /$discovery/rest?version=v1alpha1`` (for Google's
  clients), with the same credentials (also as ``?key=``) and Google's error shape.

This module only wires the parts together; each has its own module:

- :mod:`.settings`: :class:`ServiceSettings`, every setting and default, defined once;
- :mod:`.guard`: credentials (:mod:`.auth`), body limits and deadline, JSON sanity and
  in-flight slots, in that order, before a route runs; one log line per request, which
  never carries comment text;
- :mod:`.schemas`: the request and response models (every text field valid Unicode: a
  lone surrogate is a 422, never a 500);
- :mod:`.state`: the model, caches and the one chain every moderating route runs
  (check, model input, predict, decide), over :mod:`.batching`'s micro-batcher;
- :mod:`.answers`: what every answer carries (stance, scores, constructiveness, spans,
  reasons with their spans); :mod:`.integrations`: the Coral and WordPress mappings.

With a model that has the constructiveness and span heads, every scoring answer also
carries the comment's ``constructive`` scores and toxic ``spans`` (character offsets into
the text as scored, and the words), and each toxicity reason the spans behind it. With a
model without them those keys are absent, not null: such a model's answers are what they
always were.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer

from classifier import __version__
from classifier.moderation.answers import heads, moderation
from classifier.moderation.feedback import RECORD_FORMAT, now, record_key, text_digest
from classifier.moderation.guard import Guard, elapsed_ms, note, request_id
from classifier.moderation.integrations import (
    coral_answer,
    coral_comment,
    wordpress_answer,
    wordpress_comment,
)
from classifier.moderation.perspective import (
    AnalyzeCommentRequest,
    AnalyzeCommentResponse,
    GoogleErrors,
    PerspectiveError,
    SuggestCommentScoreRequest,
    SuggestCommentScoreResponse,
    analyze_answer,
    analyze_plan,
    check_languages,
    coral_comment_id,
    discovery_document,
    suggested_labels,
)
from classifier.moderation.perspective import comment_input as perspective_input
from classifier.moderation.policy import Policy, constructive_key
from classifier.moderation.schemas import (
    ArticleIn,
    CommentIn,
    CoralRequest,
    CoralResponse,
    ModerateResponse,
    ScoreRequest,
    ScoreResponse,
    WordPressRequest,
    WordPressResponse,
)
from classifier.moderation.settings import ServiceSettings
from classifier.moderation.state import CommentInput, PredictorLike, ServiceState
from classifier.schema import Scored

logger = logging.getLogger(__name__)


def comment_input(
    comment: CommentIn, *, field: str = "", article: ArticleIn | None = None
) -> CommentInput:
    """``/v1/moderate``'s and ``/v1/score``'s comment as the chain's input; ``field`` prefixes
    the names of the fields whose length is checked (``comments.3.`` in a batch)."""
    return CommentInput(
        comment.text,
        comment_id=comment.comment_id,
        parent_id=comment.parent_id,
        parent_text=comment.parent_text,
        article=article if article is not None else comment.article,
        checked=((f"{field}text", comment.text), (f"{field}parent_text", comment.parent_text)),
    )


def create_app(
    settings: ServiceSettings | None = None,
    predictor: PredictorLike | None = None,
    policy: Policy | None = None,
) -> FastAPI:
    """The moderation service as an ASGI app.

    Args:
        settings: configuration; default :class:`ServiceSettings` (which refuses
            to start: give a secret or ``no_auth=True``).
        predictor: an object with ``predict(items)`` like
            :class:`~classifier.model.torch_predictor.Predictor` (tests inject fakes); by
            default the model named by ``settings.model`` is loaded at start-up.
        policy: the policy; by default loaded from ``settings.policy`` (or the
            built-in default).

    Raises :class:`ServiceConfigError` (before any model is loaded) for
    unusable settings and ``ValueError``/``OSError`` for a bad policy file.
    """
    settings = settings or ServiceSettings()
    settings.check_runnable()
    if settings.no_auth:
        logger.warning("authentication is disabled (--no-auth): for local use only")
    policy = policy if policy is not None else Policy.load(settings.policy)
    state = ServiceState(settings, policy, predictor)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        try:
            await state.start()
        except Exception as exc:
            logger.error("cannot start the moderation service: %s", exc)
            raise
        warm = asyncio.create_task(state.warm_up(), name="threadguard-warm-up")
        try:
            yield
        finally:
            warm.cancel()
            await state.stop()

    app = FastAPI(
        title="threadguard moderation service",
        version=__version__,
        description=(
            "Stance and toxicity for reader comments, and moderation decisions from them. "
            "Send 'Authorization: Bearer <token>' or 'X-Threadguard-Signature: "
            "sha256=<HMAC-SHA256 of the raw body>' with every /v1/ request."
        ),
        lifespan=lifespan,
        # The schema and the interactive docs are open to anyone: off unless asked for
        # (on by default only with --no-auth, i.e. local use).
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url="/redoc" if settings.docs_enabled else None,
    )
    app.state.threadguard = state
    app.add_middleware(Guard, state=state)
    # outside the guard: its errors, too, are answered in Google's shape on /v1alpha1/
    app.add_middleware(GoogleErrors)
    # Authentication happens in Guard; this only documents the scheme in the OpenAPI schema.
    auth = [Depends(HTTPBearer(auto_error=False))]

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ())]
            if loc[:1] == ["body"]:
                loc = loc[1:]
            if error.get("type") == "json_invalid":
                field, message = "body", f"malformed JSON: {error.get('ctx', {}).get('error', '')}"
            else:
                field, message = ".".join(loc) or "body", str(error.get("msg", "invalid"))
            errors.append({"field": field, "message": message, "type": error.get("type")})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(PerspectiveError)
    async def perspective_error(request: Request, exc: PerspectiveError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.code, headers=exc.headers)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is alive (it may still be warming up)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """200 once the model is loaded and a warm-up inference has run, else 503."""
        body = {
            "ready": state.model_loaded and state.warmed_up,
            "model_loaded": state.model_loaded,
            "warmed_up": state.warmed_up,
            "model_version": state.model_version,
        }
        if state.error:
            body["error"] = state.error
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/v1/policy", tags=["moderation"], dependencies=auth)
    async def get_policy() -> dict[str, Any]:
        """The policy in force (the policy file's content)."""
        return {"source": state.policy.source, **state.policy.to_dict()}

    # Optional fields (a model's constructive scores and spans) are left out of an answer
    # that does not set them: a model without those heads answers as it always did.
    @app.post(
        "/v1/moderate",
        response_model=ModerateResponse,
        response_model_exclude_unset=True,
        tags=["moderation"],
        dependencies=auth,
    )
    async def moderate(comment: CommentIn, request: Request) -> dict[str, Any]:
        """Decision, reasons (with the toxic spans behind them), scores, constructiveness,
        spans and stance for one comment."""
        outcome = await state.moderate(comment_input(comment), request_id(request))
        note(request, outcome.decision.decision)
        return {
            "request_id": request_id(request),
            "comment_id": comment.comment_id,
            "decision": outcome.decision.decision,
            **moderation(outcome.scored, outcome.decision),
            "stance": outcome.scored.stance,
            "model_version": state.model_version,
            "latency_ms": elapsed_ms(request),
        }

    @app.post(
        "/v1/score",
        response_model=ScoreResponse,
        response_model_exclude_unset=True,
        tags=["moderation"],
        dependencies=auth,
    )
    async def score(batch: ScoreRequest, request: Request) -> dict[str, Any]:
        """Scores, constructiveness, spans and stance (no decisions) for a batch of comments;
        ``sort=constructive`` answers them most constructive first (a thread's best first)."""
        limit = state.settings.max_batch
        if len(batch.comments) > limit:
            raise HTTPException(
                413, f"comments has {len(batch.comments)} items; the limit is {limit} a request"
            )
        prepared = [
            state.prepare(
                comment_input(c, field=f"comments.{i}.", article=c.article or batch.article)
            )
            for i, c in enumerate(batch.comments)
        ]
        items = [item for item, _ in prepared]
        predictions = await state.predict(items, request_id(request)) if items else []
        note(request, f"{len(items)} scored")
        found = [
            Scored.of(c.text, p, t)
            for c, p, (_, t) in zip(batch.comments, predictions, prepared, strict=True)
        ]
        results = [
            {
                "comment_id": c.comment_id,
                "scores": scored.toxicity,
                **heads(scored),
                "stance": scored.stance,
            }
            for c, scored in zip(batch.comments, found, strict=True)
        ]
        if batch.sort == "constructive":
            for index, result in enumerate(results):
                result["index"] = index
            # stable: ties keep the request's order
            results.sort(key=lambda r: constructive_key(r.get("constructive")))
        return {
            "request_id": request_id(request),
            "results": results,
            "model_version": state.model_version,
            "latency_ms": elapsed_ms(request),
        }

    @app.post(
        "/v1/coral",
        response_model=CoralResponse,
        response_model_exclude_unset=True,
        tags=["integrations"],
        dependencies=auth,
        responses={204: {"description": "Nothing to moderate (empty comment body)."}},
    )
    async def coral(body: CoralRequest, request: Request) -> Any:
        """Coral Talk's external moderation phase (request signed with X-Coral-Signature)."""
        comment = coral_comment(body)
        if comment is None:
            note(request, "empty")
            return Response(status_code=204)
        outcome = await state.moderate(comment, request_id(request))
        note(request, outcome.decision.decision)
        return coral_answer(
            outcome, model_version=state.model_version, request_id=request_id(request)
        )

    @app.post(
        "/v1/wordpress",
        response_model=WordPressResponse,
        response_model_exclude_unset=True,
        tags=["integrations"],
        dependencies=auth,
    )
    async def wordpress(body: WordPressRequest, request: Request) -> dict[str, Any]:
        """What a WordPress ``pre_comment_approved`` filter should return for a comment."""
        outcome = await state.moderate(wordpress_comment(body), request_id(request))
        note(request, outcome.decision.decision)
        return wordpress_answer(
            outcome,
            model_version=state.model_version,
            request_id=request_id(request),
            latency_ms=elapsed_ms(request),
        )

    # ------------------------------------------------------------ Perspective API

    @app.get("/$discovery/rest", tags=["perspective"])
    async def discovery(request: Request, version: str = "v1alpha1") -> JSONResponse:
        """The ``commentanalyzer`` discovery document, rooted at this server (open, like
        Google's: it describes the methods and holds no secret)."""
        if version != "v1alpha1":
            error = PerspectiveError(404, "NOT_FOUND", f"no API version {version!r}; v1alpha1")
            return JSONResponse(error.body(), status_code=404)
        return JSONResponse(discovery_document(str(request.base_url), __version__))

    @app.post(
        "/v1alpha1/comments:analyze",
        response_model=AnalyzeCommentResponse,
        response_model_exclude_none=True,
        tags=["perspective"],
        dependencies=auth,
    )
    async def perspective_analyze(body: AnalyzeCommentRequest, request: Request) -> dict[str, Any]:
        """Perspective's AnalyzeComment: the requested attributes' scores and spans, from
        the same model, batcher and limits as ``/v1/moderate``."""
        asked = analyze_plan(body)  # 400s before the model runs
        comment = perspective_input(body)
        item, target = state.prepare(comment)
        (prediction,) = await state.predict([item], request_id(request))
        scores = analyze_answer(asked, prediction, comment.text, spans=bool(body.spanAnnotations))
        note(request, f"{len(scores)} of {len(asked)} attributes")
        return {
            "attributeScores": scores,
            "languages": check_languages(body.languages, [a.attribute for a in asked]),
            "detectedLanguages": ["en"],
            "clientToken": body.clientToken,
            "threadguard": {
                "modelVersion": state.model_version,
                "requestId": request_id(request),
                "stance": Scored.of(comment.text, prediction, target).stance,
            },
        }

    @app.post(
        "/v1alpha1/comments:suggestscore",
        response_model=SuggestCommentScoreResponse,
        response_model_exclude_none=True,
        tags=["perspective"],
        dependencies=auth,
    )
    async def perspective_suggestscore(
        body: SuggestCommentScoreRequest, request: Request
    ) -> dict[str, Any]:
        """Perspective's SuggestCommentScore: a moderator's decision (Coral's APPROVED or
        DELETED, or suggested attribute scores), stored with the model's scores for the
        comment, once, for ``threadguard calibrate --feedback``."""
        suggested = suggested_labels(body)
        store = state.feedback
        if store is None:
            raise PerspectiveError(
                400,
                "FAILED_PRECONDITION",
                "this service keeps no feedback: start it with --feedback FILE",
            )
        comment = perspective_input(body)
        item, _ = state.prepare(comment)
        (prediction,) = await state.predict([item], request_id(request))
        digest = text_digest(comment.text)
        record = {
            "format": RECORD_FORMAT,
            "key": record_key(body.communityId, body.clientToken, digest, suggested),
            "received": now(),
            "model_version": state.model_version,
            "community": body.communityId,
            "client_token": body.clientToken,
            "comment_id": coral_comment_id(body.context),
            "text_sha256": digest,
            "suggested": suggested,
            "scores": {k: float(v) for k, v in prediction["toxicity"].items()},
        }
        if "constructive" in prediction:
            record["constructive"] = {k: float(v) for k, v in prediction["constructive"].items()}
        stored = await asyncio.to_thread(store.append, record)
        note(request, "stored" if stored else "duplicate")
        return {
            "detectedLanguages": ["en"],
            "requestedLanguages": body.languages,
            "clientToken": body.clientToken,
        }

    return app


def create_app_from_env() -> FastAPI:
    """App factory for uvicorn workers: settings from :meth:`ServiceSettings.from_env`.

    ``uvicorn --factory classifier.moderation.app:create_app_from_env`` (what
    ``threadguard serve --workers N`` runs for N > 1).
    """
    return create_app(ServiceSettings.from_env())
