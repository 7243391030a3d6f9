"""`anomstream status`: the worker's `/status` read over HTTP and shown as tables (unit tier: a
metrics server in this process, no broker)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner
from rich.console import Console

from anomstream.cli_status import status
from anomstream.status import StatusUnavailable, fetch_status, render, status_url
from harness.probe import free_port
from streams.metrics import Metrics

DOCUMENT: dict[str, Any] = {
    "app_id": "anomstream",
    "broker": "127.0.0.1:9092",
    "topic": "signals",
    "producer_idempotence": False,
    "notes": ["the Kafka broker refuses idempotent producers: producing without idempotence"],
    "partitions": [0, 1, 2, 3],
    "consumer_lag": {"0": 0, "1": 12},
    "sources": {
        "held": 3,
        "max": 100000,
        "warming": 1,
        "warming_listed": [
            {"source": "pump-3", "records": 40, "needs": 160, "signals": {"temp": 160, "rpm": 2}}
        ],
        "warming_truncated": False,
    },
    "models": {
        "loaded": [
            {
                "directory": "pumps",
                "name": "ae",
                "version": "3f2a9c",
                "signals": ["temp", "rpm"],
                "sources": ["pump-*"],
                "sources_served": 3,
            }
        ],
        "refused": [{"directory": "broken", "reason": "model.json: unsupported model format 9"}],
    },
}


@pytest.fixture
def worker() -> Iterator[tuple[Metrics, str]]:
    """A worker's metrics server with a published document."""
    metrics = Metrics()
    port = free_port()
    server = metrics.serve(port)
    assert server is not None
    metrics.publish_status(DOCUMENT)
    metrics.ready.set(1)
    try:
        yield metrics, f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()


def test_the_url_may_be_a_port_a_host_or_the_endpoint_itself() -> None:
    assert status_url("http://localhost:9464") == "http://localhost:9464/status"
    assert status_url("localhost:9464") == "http://localhost:9464/status"
    assert status_url("http://h:1/status") == "http://h:1/status"


def test_the_document_comes_back_with_uptime_and_version(worker: tuple[Metrics, str]) -> None:
    _, url = worker
    doc = fetch_status(url)
    assert doc["sources"] == DOCUMENT["sources"] and doc["ready"] is True
    assert "version" in doc and doc["uptime_s"] >= 0


def test_a_worker_that_is_not_there_is_one_line_that_says_where_it_looked() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StatusUnavailable) as caught:
        fetch_status(url, timeout=1)
    message = str(caught.value)
    assert "cannot reach the worker at " + url + "/status" in message
    assert "ANOMSTREAM_METRICS_PORT" in message and "\n" not in message


def test_something_else_on_the_port_is_not_taken_for_a_worker(
    worker: tuple[Metrics, str],
) -> None:
    _, url = worker
    with pytest.raises(StatusUnavailable, match="answered 404"):
        fetch_status(url + "/metrics/nothing")


def test_tables_show_the_warming_sources_models_refusals_and_lag() -> None:
    console = Console(record=True, width=140)
    render({**DOCUMENT, "ready": True, "version": "0.1.0", "uptime_s": 75.0}, console)
    text = console.export_text()
    for needle in (
        "ready",
        "up 1m 15s",
        "partitions 0, 1, 2, 3",
        "idempotence off",
        "refuses idempotent producers",
        "3 sources held (max 100000), 1 warming up",
        "pump-3",
        "temp 160, rpm 2",
        "pump-*",
        "broken",
        "unsupported model format 9",
    ):
        assert needle in text, needle
    assert re.search(r"│\s+1 │\s+12 │", text), text  # partition 1 is 12 records behind


def test_the_command_prints_tables_or_json(worker: tuple[Metrics, str]) -> None:
    _, url = worker
    runner = CliRunner()
    shown = runner.invoke(status, ["--url", url])
    assert shown.exit_code == 0, shown.output
    assert "pump-3" in shown.output and "pumps" in shown.output
    raw = runner.invoke(status, ["--url", url, "--json"])
    assert raw.exit_code == 0
    assert json.loads(raw.output)["models"] == DOCUMENT["models"]


def test_the_command_fails_in_one_line_when_the_worker_is_away() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(click.ClickException) as caught:
        status.main(["--url", url], standalone_mode=False)
    assert "cannot reach the worker" in caught.value.format_message()


def test_wait_gives_up_on_a_worker_that_never_gets_ready(worker: tuple[Metrics, str]) -> None:
    metrics, url = worker
    metrics.ready.set(0)
    with pytest.raises(click.ClickException, match="not ready after 1 s"):
        status.main(["--url", url, "--wait", "1"], standalone_mode=False)
    metrics.ready.set(1)
    status.main(["--url", url, "--wait", "5"], standalone_mode=False)  # ready: shows it
