"""Ports and readiness: a free port to listen on, and "ready" meaning a real Kafka round-trip.

An open port is not a ready broker (the JVM binds before it can answer), and a broker already on
the port is not the one we started; so readiness is a metadata request, optionally checked
against the cluster id we gave the broker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import time
from collections.abc import Callable

from harness.errors import BrokerError

__all__ = ["free_port", "wait_ready"]


def free_port() -> int:
    """A loopback port that was free a moment ago (the kernel picks it, so parallel runs differ)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _probe_once(bootstrap: str, timeout: float) -> dict[str, object]:
    """One real protocol round-trip (ApiVersions + Metadata): the cluster as the broker sees it."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=max(1000, int(timeout * 1000))
    )
    try:
        await asyncio.wait_for(admin.start(), timeout)
        return await asyncio.wait_for(admin.describe_cluster(), timeout)
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def _probe(bootstrap: str, timeout: float, cluster_id: str | None = None) -> str | None:
    """None if the broker answered a metadata request listing itself, else why not.

    With `cluster_id`, the answer must come from that cluster: a stray broker already on the
    port must not pass for the one we just started. Runs in its own thread and event loop so
    callers inside a running loop can use it too.
    """

    def run() -> str | None:
        try:
            cluster = asyncio.run(_probe_once(bootstrap, timeout))
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}".strip()
        if not cluster.get("brokers"):
            return "metadata lists no broker yet"
        if cluster_id is not None and cluster.get("cluster_id") != cluster_id:
            return (
                f"another broker answers on {bootstrap} "
                f"(cluster {cluster.get('cluster_id')!r}, expected {cluster_id!r})"
            )
        return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def wait_ready(
    bootstrap: str,
    timeout: float = 60.0,
    alive: Callable[[], str | None] | None = None,
    cluster_id: str | None = None,
) -> None:
    """Block until `bootstrap` answers a Kafka metadata request; raise BrokerError after timeout.

    `alive` returns a reason once the broker process has died, so a crash fails fast.
    """
    deadline = time.monotonic() + timeout
    last = "not tried"
    while True:
        if alive is not None:
            dead = alive()
            if dead is not None:
                raise BrokerError(dead)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrokerError(f"broker at {bootstrap} not ready after {timeout:.0f}s ({last})")
        if _port_open(bootstrap):
            reason = _probe(bootstrap, min(5.0, max(1.0, remaining)), cluster_id)
            if reason is None:
                return
            last = reason
        else:
            last = "port closed"
        time.sleep(0.2)


def _port_open(bootstrap: str) -> bool:
    host, _, port = bootstrap.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False
