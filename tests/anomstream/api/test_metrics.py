"""`/metrics`: requests by route template and status, in the API's own registry."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from anomstream.api.metrics import ApiMetrics
from tests.anomstream.api.conftest import series


def samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_requests_are_counted_by_route_template_and_status(client: TestClient) -> None:
    for job in ("a", "b", "c"):
        assert client.get(f"/v1/jobs/{job}").status_code == 404
    client.post("/v1/detect", json={"records": series(5)})
    client.get("/v1/elsewhere")
    found = samples(client)

    def count(route: str, status: str, method: str = "GET") -> float:
        key = frozenset({"method": method, "route": route, "status": status}.items())
        return found.get(("anomstream_api_requests_total", key), 0.0)

    assert count("/v1/jobs/{job_id}", "404") == 3  # the template, never the id
    assert count("/v1/detect", "200", "POST") == 1
    assert count("unmatched", "404") == 1
    latency = frozenset({"method": "POST", "route": "/v1/detect", "status": "200"}.items())
    assert found[("anomstream_api_request_seconds_count", latency)] == 1
    assert found[("anomstream_api_records_scored_total", frozenset())] == 5


def test_jobs_are_counted_by_kind_and_status(idle: TestClient) -> None:
    csv = b"timestamp,t\n1795514400,1\n1795514401,2\n"
    assert (
        idle.post("/v1/jobs", content=csv, headers={"content-type": "text/csv"}).status_code == 202
    )
    key = frozenset({"kind": "detect", "status": "QUEUED"}.items())
    assert samples(idle)[("anomstream_api_jobs", key)] == 1


def test_the_registry_is_the_apis_own() -> None:
    ApiMetrics()  # twice in one process: no clash in a shared registry
    ApiMetrics()
    assert REGISTRY.get_sample_value("anomstream_api_requests_total") is None
