"""Every Prometheus metric of the worker, in one place, on its own registry, and its HTTP endpoint.

Names follow the Prometheus guide: `anomstream_` prefix, base units (seconds, bytes), `_total`
counters. Nothing carries a per-source label unless the source is on the allow-list
(`ANOMSTREAM_METRICS_SOURCES`): sources are unbounded, Prometheus series must not be. The
processor updates the metrics once per micro-batch.

`serve()` answers `/metrics`, `/healthz` (the process is alive), `/readyz` (joined the group
and restored its state: 503 until then) and `/status` (JSON: the last document the worker
published, `streams.status`, with its uptime and version).
"""

from __future__ import annotations

import platform
import time
from collections import Counter as Tally
from collections.abc import Iterable
from http.server import ThreadingHTTPServer
from importlib import metadata
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from streams.metrics_http import serve

if TYPE_CHECKING:
    from streams.security import MetricsGuard

SCORE_BUCKETS = (0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999, 1.0)
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0, 86400.0)

disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series: no use


class Metrics:
    """The worker's metrics. One instance per process; tests make their own."""

    def __init__(
        self, registry: CollectorRegistry | None = None, sources: Iterable[str] = ()
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.allowed_sources = frozenset(sources)
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
        self.processing = Histogram(
            "anomstream_record_processing_seconds",
            "From the record's append to the input topic to its score being acknowledged",
            buckets=(*SECONDS_BUCKETS, 30.0, 60.0),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "anomstream_batch_processing_seconds",
            "Time to decode, score and publish one micro-batch",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.event_lag = Histogram(
            "anomstream_event_time_lag_seconds",
            "Now minus the record's event time, when scored",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "anomstream_consumer_lag_records",
            "Records in the input partition not yet scored (high watermark minus next offset)",
            ["partition"],
            registry=r,
        )
        self.sources = Gauge(
            "anomstream_active_sources",
            "Sources this worker holds: loaded, or in the table of its partitions",
            registry=r,
        )
        self.warming = Gauge(
            "anomstream_warming_sources",
            "Sources whose detectors were still warming up at their last record",
            registry=r,
        )
        self.state_bytes = Gauge(
            "anomstream_state_bytes", "Bytes of detector state written at the last save", registry=r
        )
        self.state_written = Counter(
            "anomstream_state_written_bytes",
            "Bytes of detector state written to the changelog",
            registry=r,
        )
        self.unsaved = Gauge(
            "anomstream_unsaved_sources",
            "Sources whose state is ahead of the changelog (input committed only up to their "
            "first unsaved record)",
            registry=r,
        )
        self.max_sources = Gauge(
            "anomstream_max_sources",
            "Sources this worker may hold (max_sources); records of new ones beyond it are "
            "dead-lettered (too_many_sources)",
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
        self.model = Gauge(
            "anomstream_model_info", "Active multivariate model", ["name", "version"], registry=r
        )
        self.model_errors: dict[str, str] = {}
        """Model directory -> why it does not serve, for `/readyz`."""
        self._quarantined: dict[str, int] = {}
        self.model_quarantined = Counter(
            "anomstream_model_quarantined",
            "Models taken out of service because their inference failed at run time",
            ["model"],
            registry=r,
        )
        self.build = Gauge(
            "anomstream_build_info", "Build information", ["version", "python"], registry=r
        )
        self.source_records = Counter(
            "anomstream_source_records",
            "Records scored, for allow-listed sources",
            ["source"],
            registry=r,
        )
        self.source_anomalies = Counter(
            "anomstream_source_anomalies",
            "Anomalous records, for allow-listed sources",
            ["source"],
            registry=r,
        )
        self.key_mismatch = Counter(
            "anomstream_key_mismatch_records",
            "Records whose message key is not their source id (scored with the state kept on "
            "the key's partition)",
            registry=r,
        )
        self.dead_letters_truncated = Counter(
            "anomstream_dead_letters_truncated",
            "Dead letters cut to the DLQ topic's max.message.bytes (prefix, sha256, size kept)",
            registry=r,
        )
        self.gap_refilled = Counter(
            "anomstream_gap_records_refilled",
            "Input records Faust never delivered, read from the broker by offset and scored",
            registry=r,
        )
        self.gap_skipped = Counter(
            "anomstream_gap_offsets_skipped",
            "Input offsets skipped because the broker holds no record there (compaction, "
            "retention, transaction markers)",
            ["reason"],
            registry=r,
        )
        self.rebalances = Counter(
            "anomstream_rebalances",
            "Rebalances that moved input partitions (and their sources) away from this worker",
            registry=r,
        )
        self.state_unreadable = Counter(
            "anomstream_state_unreadable",
            "Stored source states that could not be read (the source started cold)",
            ["reason"],
            registry=r,
        )
        self.offset_resets = Counter(
            "anomstream_offset_resets",
            "Records scored although at or below the offset their source's state applied on "
            "the same topic and partition (topic recreated or offsets reset)",
            registry=r,
        )
        self.open_episodes = Gauge(
            "anomstream_open_episodes",
            "Sources of this worker with an open anomaly episode (at their last record)",
            registry=r,
        )
        self.episodes = Counter(
            "anomstream_episodes",
            "Anomaly episodes closed, by the severity they reached",
            ["severity"],
            registry=r,
        )
        self.schema_fetches = Counter(
            "anomstream_schema_fetches",
            "Avro writer schemas asked of the schema registry, by outcome (ok, unknown, "
            "not_avro; error: no answer, retried)",
            ["outcome"],
            registry=r,
        )
        self.build.labels(version=package_version(), python=platform.python_version()).set(1)
        self.set_models([])
        for outcome in ("scored", "dead_lettered", "replayed"):
            self.records.labels(outcome=outcome)
        self._warming: set[str] = set()
        self._open: set[str] = set()
        """Sources whose last record left an episode open."""
        self.lag: dict[int, int] = {}
        """Input partition -> consumer lag (records) at its last batch."""
        self.started = time.time()
        self._status: tuple[float, dict[str, Any]] | None = None

    @property
    def warming_sources(self) -> set[str]:
        """Sources still warming up at their last record (read in the event loop only)."""
        return self._warming

    def observe_lag(self, partition: int, lag: int) -> None:
        self.lag[partition] = lag
        self.consumer_lag.labels(partition=str(partition)).set(lag)

    def publish_status(self, document: dict[str, Any]) -> None:
        """The worker's latest status document (built in the event loop, never changed after:
        the HTTP thread reads it as it is)."""
        self._status = (time.monotonic(), document)

    def status_document(self) -> dict[str, Any]:
        """What `/status` answers: the last document, how old it is, readiness, uptime, version."""
        published = self._status
        now = time.time()
        head = {
            "version": package_version(),
            "python": platform.python_version(),
            "ready": self.ready._value.get() == 1.0,
            "started": self.started,
            "uptime_s": round(now - self.started, 3),
        }
        if published is None:
            return {**head, "snapshot_age_s": None}
        at, document = published
        return {**head, "snapshot_age_s": round(time.monotonic() - at, 3), **document}

    def report_models(self, errors: dict[str, str], quarantined: dict[str, int]) -> None:
        """What `/readyz` says of model directories that do not serve (a model refused at load
        or quarantined at run time: the worker scores on without it), and the quarantine count
        (`quarantined`: directory -> times quarantined so far; only the increase is counted)."""
        self.model_errors = dict(errors)
        for name, times in quarantined.items():
            seen = self._quarantined.get(name, 0)
            if times > seen:
                self.model_quarantined.labels(model=name).inc(times - seen)
                self._quarantined[name] = times

    def set_models(self, loaded: list[tuple[str, str]]) -> None:
        """(name, version) of every model the worker serves; `none` when it serves none."""
        self.model.clear()
        for name, version in loaded or [("none", "")]:
            self.model.labels(name=name, version=version).set(1)

    def serve(
        self, port: int, host: str = "0.0.0.0", guard: MetricsGuard | None = None
    ) -> ThreadingHTTPServer | None:
        """Answer `/metrics`, `/healthz`, `/readyz`, `/status` on `host:port` from a thread (0 =
        do not serve); with a `guard`, `/metrics` asks for credentials, the probes stay open."""
        return serve(self, port, host, guard) if port else None

    def observe_batch(
        self,
        scored: Iterable[tuple[str, float, bool, bool, float]],
        dead: Iterable[str],
        replayed: int,
        events: Iterable[tuple[str, str]],
        appended: Iterable[float],
        now: float,
        seconds: float,
    ) -> None:
        """Account for one micro-batch at once.

        `scored` holds (source, score, is_anomaly, warming_up, event time) per scored record;
        `appended` the input records' broker append times (epoch seconds).
        """
        count = 0
        last_ts = None
        for source, score, anomalous, warming, ts in scored:
            count += 1
            self.scores.observe(score)
            last_ts = ts
            if warming:
                self._warming.add(source)
            else:
                self._warming.discard(source)
            if source in self.allowed_sources:
                self.source_records.labels(source=source).inc()
                if anomalous:
                    self.source_anomalies.labels(source=source).inc()
        self.records.labels(outcome="scored").inc(count)
        self.score_messages.inc(count)
        if replayed:
            self.records.labels(outcome="replayed").inc(replayed)
        dead_counts = Tally(dead)
        if dead_counts:
            self.records.labels(outcome="dead_lettered").inc(sum(dead_counts.values()))
            for reason, n in dead_counts.items():
                self.dead_letters.labels(reason=reason).inc(n)
        for (kind, sev), n in Tally(events).items():
            self.events.labels(kind=kind, severity=sev).inc(n)
        for t in appended:
            self.processing.observe(max(now - t, 0.0))
        if last_ts is not None:
            self.event_lag.observe(max(now - last_ts, 0.0))
        self.warming.set(len(self._warming))
        self.batch_seconds.observe(seconds)

    def observe_episodes(self, open_now: dict[str, bool], closed: Iterable[str]) -> None:
        """One micro-batch's episodes: per source in it, whether its episode is open after it;
        the severity of each episode it closed."""
        for source, is_open in open_now.items():
            if is_open:
                self._open.add(source)
            else:
                self._open.discard(source)
        self.open_episodes.set(len(self._open))
        for severity, n in Tally(closed).items():
            self.episodes.labels(severity=severity).inc(n)

    def forget_sources(self, sources: Iterable[str]) -> None:
        gone = set(sources)
        self._warming.difference_update(gone)
        self.warming.set(len(self._warming))
        self._open.difference_update(gone)
        self.open_episodes.set(len(self._open))


def package_version() -> str:
    try:
        return metadata.version("anomstream")
    except metadata.PackageNotFoundError:
        return "dev"
