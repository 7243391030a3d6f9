"""The metrics endpoint over HTTP (unit tier: the server thread, no broker)."""

from __future__ import annotations

import json

from harness.probe import free_port
from streams.metrics import Metrics, package_version
from tests.integration.test_metrics import get


def test_readyz_names_quarantined_models_and_the_counter_counts_each_once() -> None:
    metrics = Metrics()
    port = free_port()
    server = metrics.serve(port)
    assert server is not None
    try:
        assert get(port, "/readyz") == (503, "not ready\n")
        metrics.ready.set(1)
        metrics.report_models({}, {})
        assert get(port, "/readyz") == (200, "ready\n")
        errors = {"pumps": "quarantined: inference fails (bad shape)"}
        metrics.report_models(errors, {"pumps": 1})
        metrics.report_models(errors, {"pumps": 1})  # the same quarantine, seen again
        code, body = get(port, "/readyz")
        assert code == 200  # the worker still scores, with the univariate suite
        assert body == "ready\nmodel pumps: quarantined: inference fails (bad shape)\n"
        assert metrics.model_quarantined.labels(model="pumps")._value.get() == 1
        metrics.report_models(errors, {"pumps": 2})
        assert metrics.model_quarantined.labels(model="pumps")._value.get() == 2
    finally:
        server.shutdown()


def test_status_serves_the_last_published_document_with_uptime_and_version() -> None:
    metrics = Metrics()
    port = free_port()
    server = metrics.serve(port)
    assert server is not None
    try:
        code, body = get(port, "/status")
        first = json.loads(body)
        assert code == 200 and first["snapshot_age_s"] is None and first["ready"] is False
        assert first["version"] == package_version() and first["uptime_s"] >= 0
        document = {"sources": {"held": 3}, "partitions": [0, 1]}
        metrics.publish_status(document)
        metrics.ready.set(1)
        later = json.loads(get(port, "/status")[1])
        assert later["sources"] == {"held": 3} and later["partitions"] == [0, 1]
        assert later["ready"] is True and 0 <= later["snapshot_age_s"] < 5
        assert document == {"sources": {"held": 3}, "partitions": [0, 1]}  # not changed
        assert "/status" in get(port, "/nowhere")[1]
    finally:
        server.shutdown()
