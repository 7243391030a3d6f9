"""Plain ASGI middleware around the whole app: metrics, body limits, and the last resort.

Plain ASGI rather than `BaseHTTPMiddleware` so that a body is counted as it streams in (a
413 is sent before a large upload is read) and so that no exception escapes as a traceback:
an unexpected one is logged once and answered with a problem (`problems.internal_error`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from anomstream.api.metrics import ApiMetrics
from anomstream.api.problems import Problem, internal_error, too_large

log = logging.getLogger("anomstream.api")

UNMATCHED = "unmatched"
"""The route label of requests no route matched (their paths are the client's: unbounded)."""


def route_template(app: ASGIApp, scope: Scope) -> str:
    """The matched route's template: the one routing chose, else the first that matches."""
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return str(route.path)
    for candidate in getattr(app, "routes", ()):
        match, _ = candidate.matches(scope)
        if match == Match.FULL and hasattr(candidate, "path"):
            return str(candidate.path)
    return UNMATCHED


async def send_problem(send: Send, problem: Problem, path: str) -> None:
    response = problem.response(path)
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


class Guard:
    """Outermost: counts and times every request, and answers any exception with a 500
    problem (logged with its traceback) unless the response had already begun."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, routes: ASGIApp) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        begun = False

        async def sending(message: Message) -> None:
            nonlocal status, begun
            if message["type"] == "http.response.start":
                status, begun = int(message["status"]), True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if not begun:
                status = 500
                await send_problem(send, internal_error(), scope.get("path", ""))
        finally:
            self.metrics.observe(
                scope.get("method", ""),
                route_template(self.routes, scope),
                status,
                time.perf_counter() - started,
            )


class BodyLimit:
    """Refuses bodies beyond their limit with a 413 naming it: by `Content-Length` before
    anything is read, else (chunked bodies) as soon as the bytes received pass it."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], tuple[str, int]]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name, limit = self.limit_for(scope)
        path = scope.get("path", "")
        problem = too_large(name, limit, "the request body")
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_problem(send, problem, path)
            return
        received = 0
        refused = False

        async def counting() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    await send_problem(send, problem, path)
                    return {"type": "http.disconnect"}
            return message

        async def sending(message: Message) -> None:
            if not refused:  # the 413 went out already
                await send(message)

        try:
            await self.app(scope, counting, sending)
        except Exception:
            if not refused:
                raise
