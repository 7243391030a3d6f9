"""The API's Prometheus metrics, in a registry of its own (the worker's stays the worker's).

Requests are counted and timed by route template (`/v1/jobs/{id}`, never the id itself, so
the series stay few), method and status; jobs are counted by kind and status at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series: no use

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class JobCounts(Collector):
    """`anomstream_api_jobs{kind,status}`, read from the job store when scraped."""

    def __init__(self, counts: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "anomstream_api_jobs", "jobs in the store by kind and status", labels=["kind", "status"]
        )
        for (kind, status), n in sorted(self.counts().items()):
            family.add_metric([kind, status], n)
        yield family


class ApiMetrics:
    """The families the API exports at `/metrics`."""

    def __init__(self, counts: Callable[[], Mapping[tuple[str, str], int]] | None = None) -> None:
        self.registry = CollectorRegistry()
        labels = ["method", "route", "status"]
        self.requests = Counter(
            "anomstream_api_requests",
            "HTTP requests by method, route template and status",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "anomstream_api_request_seconds",
            "HTTP request latency (until the response is sent) by route template and status",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.records = Counter(
            "anomstream_api_records_scored",
            "records scored by POST /v1/detect (jobs count theirs in their summary)",
            registry=self.registry,
        )
        if counts is not None:
            self.registry.register(JobCounts(counts))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
