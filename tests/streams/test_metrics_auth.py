"""`/metrics` behind basic or bearer auth, the probes open, the bind address honoured (unit tier:
the server thread on loopback, no broker)."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from harness.probe import free_port
from streams.metrics import Metrics
from streams.security import MetricsGuard, metrics_guard
from streams.settings import load_settings


def get(port: int, path: str, authorization: str | None = None) -> tuple[int, str, str | None]:
    """Status, body and `WWW-Authenticate` of a GET."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.read().decode(), resp.headers.get("WWW-Authenticate")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers.get("WWW-Authenticate")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def guarded() -> Iterator[int]:
    settings = load_settings(
        environ={
            "ANOMSTREAM_METRICS_USERNAME": "prom",
            "ANOMSTREAM_METRICS_PASSWORD": "scrape-pw",
            "ANOMSTREAM_METRICS_TOKEN": "tok-42",
        }
    )
    guard = metrics_guard(settings.security)
    assert guard is not None
    port = free_port()
    server = Metrics().serve(port, host="127.0.0.1", guard=guard)
    assert server is not None
    try:
        yield port
    finally:
        server.shutdown()


def test_metrics_needs_the_token_or_the_password(guarded: int) -> None:
    code, body, challenge = get(guarded, "/metrics")
    assert code == 401 and challenge == 'Basic realm="anomstream"' and "anomstream_" not in body
    assert get(guarded, "/metrics", "Bearer tok-42")[0] == 200
    assert "anomstream_ready" in get(guarded, "/metrics", "Bearer tok-42")[1]
    assert get(guarded, "/metrics", basic("prom", "scrape-pw"))[0] == 200
    for wrong in ("Bearer tok-43", "Bearer ", basic("prom", "nope"), basic("root", "scrape-pw")):
        assert get(guarded, "/metrics", wrong)[0] == 401, wrong
    assert get(guarded, "/metrics", "Basic not-base64!")[0] == 401


def test_probes_stay_open_for_the_orchestrator(guarded: int) -> None:
    assert get(guarded, "/healthz")[:2] == (200, "ok\n")
    assert get(guarded, "/readyz")[0] == 503  # open, and honest: not ready yet


def test_a_token_alone_challenges_with_bearer() -> None:
    guard = MetricsGuard(token="t")
    assert guard.challenge == "Bearer"
    assert guard.allows("bearer t") and not guard.allows("Basic dDp0") and not guard.allows(None)


def test_no_credentials_leave_metrics_open_and_the_bind_address_is_used() -> None:
    assert metrics_guard(load_settings(environ={}).security) is None
    assert load_settings(environ={}).security.metrics_host == "0.0.0.0"  # containers
    port = free_port()
    server = Metrics().serve(port, host="127.0.0.1")
    assert server is not None
    try:
        assert server.server_address[0] == "127.0.0.1"
        assert get(port, "/metrics")[0] == 200
    finally:
        server.shutdown()


def test_an_ipv6_address_binds_an_ipv6_socket() -> None:
    import socket

    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    port = free_port()
    try:
        server = Metrics().serve(port, host="::1")
    except OSError as exc:  # IPv6 disabled in this container
        pytest.skip(f"cannot bind ::1: {exc}")
    assert server is not None
    try:
        assert server.address_family == socket.AF_INET6
    finally:
        server.shutdown()
