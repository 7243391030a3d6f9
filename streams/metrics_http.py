"""The worker's HTTP endpoint: `/metrics` (optionally behind basic or bearer auth),
`/healthz`, `/readyz` and `/status`, answered from a thread off the event loop."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from streams.metrics import Metrics
    from streams.security import MetricsGuard

TEXT = "text/plain; charset=utf-8"


def serve(
    metrics: Metrics, port: int, host: str, guard: MetricsGuard | None
) -> ThreadingHTTPServer:
    """Start the endpoint on `host:port` (IPv6 when `host` has a colon) in a daemon thread."""
    server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
    server = server_class((host, port), _handler(metrics, guard))
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler(metrics: Metrics, guard: MetricsGuard | None = None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                if guard is not None and not guard.allows(self.headers.get("Authorization")):
                    self._send(401, b"unauthorized\n", challenge=guard.challenge)
                    return
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send(200, b"ok\n")
            elif path == "/readyz":
                ready = metrics.ready._value.get() == 1.0
                body = "ready\n" if ready else "not ready\n"
                body += "".join(f"model {n}: {why}\n" for n, why in metrics.model_errors.items())
                self._send(200 if ready else 503, body.encode())
            elif path == "/status":
                self._send(200, orjson.dumps(metrics.status_document()), "application/json")
            else:
                self._send(404, b"not found: try /metrics, /healthz, /readyz or /status\n")

        def _send(
            self, code: int, body: bytes, kind: str = TEXT, challenge: str | None = None
        ) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            if challenge is not None:
                self.send_header("WWW-Authenticate", challenge)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes every 15 s would flood the worker's log."""

    return Handler
