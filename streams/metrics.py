"""Every Prometheus metric of the worker, in one place, on its own registry.

Names follow the Prometheus guide: `anomstream_` prefix, base units, `_total` counters. Nothing
carries a per-source label (cardinality). The processor updates them once per micro-batch.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from importlib import metadata

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

SCORE_BUCKETS = (0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999, 1.0)
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0, 86400.0)


class Metrics:
    """The worker's metrics. One instance per process; tests make their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.records = Counter(
            "anomstream_records", "Input records by outcome", ["outcome"], registry=r
        )
        self.dead_letters = Counter(
            "anomstream_dead_letters",
            "Records sent to the dead-letter topic",
            ["reason"],
            registry=r,
        )
        self.score_messages = Counter(
            "anomstream_score_messages", "Score messages produced", registry=r
        )
        self.events = Counter(
            "anomstream_anomaly_events", "Anomaly events produced", ["kind", "severity"], registry=r
        )
        self.scores = Histogram(
            "anomstream_score", "Record scores", buckets=SCORE_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "anomstream_batch_processing_seconds",
            "Time to decode, score, publish and save one micro-batch",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.event_lag = Histogram(
            "anomstream_event_time_lag_seconds",
            "Now minus the record's event time, when scored",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.sources = Gauge(
            "anomstream_active_sources", "Sources with detector state in this worker", registry=r
        )
        self.warming = Gauge(
            "anomstream_warming_records_ratio",
            "Share of the last batch's records whose detectors were still warming up",
            registry=r,
        )
        self.ready = Gauge(
            "anomstream_ready",
            "1 once the worker joined its group and recovered its state",
            registry=r,
        )
        self.threshold = Gauge(
            "anomstream_threshold", "Score threshold (1 - target_fap)", registry=r
        )
        self.build = Gauge("anomstream_build_info", "Build information", ["version"], registry=r)
        self.build.labels(version=_version()).set(1)
        for outcome in ("scored", "dead_lettered", "replayed"):
            self.records.labels(outcome=outcome)

    def serve(self, port: int) -> None:
        """Expose `/metrics` over HTTP (port 0 = do not serve)."""
        if port:
            start_http_server(port, registry=self.registry)

    def observe_batch(
        self,
        scored: int,
        dead: Iterable[str],
        replayed: int,
        scores: Iterable[float],
        events: Iterable[tuple[str, str]],
        lags: Iterable[float],
        warming: int,
        seconds: float,
    ) -> None:
        """Account for one micro-batch at once: cheap per record."""
        self.records.labels(outcome="scored").inc(scored)
        if replayed:
            self.records.labels(outcome="replayed").inc(replayed)
        dead_counts = Tally(dead)
        if dead_counts:
            self.records.labels(outcome="dead_lettered").inc(sum(dead_counts.values()))
            for reason, n in dead_counts.items():
                self.dead_letters.labels(reason=reason).inc(n)
        self.score_messages.inc(scored)
        for (kind, sev), n in Tally(events).items():
            self.events.labels(kind=kind, severity=sev).inc(n)
        for value in scores:
            self.scores.observe(value)
        for lag in lags:
            self.event_lag.observe(lag)
        if scored:
            self.warming.set(warming / scored)
        self.batch_seconds.observe(seconds)


def _version() -> str:
    try:
        return metadata.version("anomstream")
    except metadata.PackageNotFoundError:
        return "dev"
