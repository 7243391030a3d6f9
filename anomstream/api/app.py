"""The FastAPI app: `create_app(settings)`, used in-process by tests and by `anomstream serve`.

It owns the data directory while it lives (a lock file: two servers on one job store would run
each job twice), starts the job pool on start-up and stops it on shutdown (running jobs FAILED
"server stopped", queued ones kept for the next start).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from importlib import metadata
from typing import IO, Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Scope

from anomstream.api import detect, jobs, models, openapi
from anomstream.api.auth import read_tokens, require_token
from anomstream.api.catalog import Catalog
from anomstream.api.context import Api
from anomstream.api.metrics import ApiMetrics
from anomstream.api.middleware import BodyLimit, Guard
from anomstream.api.problems import Problem, validation_problem
from anomstream.api.rules import server_rules
from anomstream.api.runner import Runner
from anomstream.api.settings import ApiSettings
from anomstream.api.store import JobStore
from detectors.rules import RuleError

UPLOAD_ROUTES = ("/v1/jobs", "/v1/models")
"""POSTs to these carry files: `max_upload_bytes`; every other body `max_body_bytes`."""


class ApiStartError(RuntimeError):
    """The server cannot start; one line for the user."""


def lock(settings: ApiSettings) -> IO[str]:
    """The data directory's lock, held while the app lives."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "server.lock"
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ApiStartError(
            f"{settings.data_dir} is in use by another server (pid {holder}): "
            "stop it or give another --data-dir"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def resolved(settings: ApiSettings) -> ApiSettings:
    """Absolute directories: job processes run with their own working directory in mind."""
    return settings.model_copy(
        update={
            "data_dir": settings.data_dir.expanduser().resolve(),
            "models_dir": settings.models_dir.expanduser().resolve(),
            "rules_file": None
            if settings.rules_file is None
            else settings.rules_file.expanduser().resolve(),
        }
    )


def prepare_scoring() -> None:
    """Compile (or load from numba's cache) the scoring loops before the first request."""
    from detectors.config import ScoringConfig
    from detectors.engine import Scorer

    Scorer(ScoringConfig()).prepare()


def install_handlers(app: FastAPI) -> None:
    """FastAPI's own errors (validation, unknown route, wrong method) as problems too."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return exc.response(request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such resource: {request.url.path}"
        return Problem(exc.status_code, kind, detail, headers=exc.headers).response(
            request.url.path
        )

    async def on_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return validation_problem(exc.errors()).response(request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)


def create_app(settings: ApiSettings, prepare: bool = True) -> FastAPI:
    """The app for `settings`; its lifespan runs the job pool (`prepare`: compile the scoring
    loops at start-up, so no request waits for them)."""
    settings = resolved(settings)
    tokens = read_tokens(settings.tokens_file) if settings.tokens_file else frozenset()
    try:
        rules = server_rules(settings.rules_file)
    except RuleError as exc:
        raise ApiStartError(f"ANOMSTREAM_API_RULES_FILE: {exc}") from None
    held = lock(settings)
    store = JobStore(settings.database)
    runner = Runner(store, settings)
    metrics = ApiMetrics(store.counts)
    state = Api(settings, store, runner, Catalog(settings.models_dir), metrics, rules)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runner.start()
        if prepare:
            await run_in_threadpool(prepare_scoring)
        try:
            yield
        finally:
            await run_in_threadpool(runner.stop)
            held.close()  # the lock goes with it

    app = FastAPI(
        title="anomstream",
        version=metadata.version("anomstream"),
        summary="Anomaly detection over HTTP: inline records, file jobs, training, models.",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.api = state
    app.state.tokens = tokens
    install_handlers(app)
    guarded = [Depends(require_token)]
    for router in (detect.router, jobs.router, models.router):
        app.include_router(router, dependencies=guarded)

    @app.get("/healthz", tags=["operations"], summary="Liveness, and the job pool's state")
    async def healthz() -> dict[str, Any]:
        counts = await run_in_threadpool(store.counts)
        by_status: dict[str, int] = {}
        for (_, status), n in counts.items():
            by_status[status] = by_status.get(status, 0) + n
        return {"status": "ok", "jobs": by_status, "workers": settings.workers}

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics of the API (requests by route and status, jobs)",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def prometheus() -> Response:
        body = await run_in_threadpool(metrics.exposition)
        return Response(body, media_type="text/plain; version=0.0.4")

    def limit_for(scope: Scope) -> tuple[str, int]:
        if scope.get("method") == "POST" and scope.get("path") in UPLOAD_ROUTES:
            return "max_upload_bytes", settings.max_upload_bytes
        return "max_body_bytes", settings.max_body_bytes

    app.add_middleware(BodyLimit, limit_for=limit_for)
    app.add_middleware(Guard, metrics=metrics, routes=app.router)
    openapi.install(app)
    return app
