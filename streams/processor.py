"""One micro-batch, top to bottom: decode+validate -> per-source state -> score -> publish -> save.

Delivery without transactions (DESIGN.md, "Delivery and state"): the batch is scored against
the states as they were; score messages, events and dead letters are published and their
acknowledgements awaited; only then is each touched source's new state written to the table,
carrying the input offsets it has applied, and those writes acknowledged too. The caller acks the
input events after `process` returns, so offsets are committed only behind saved state. A crash
anywhere replays the batch: before the state write it produces the same messages again (same
ids), after it the replayed records are recognised by their offsets and skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import orjson

from detectors.engine import Scored, Scorer
from detectors.fusion import severity
from detectors.messages import anomaly_event, score_message
from detectors.records import Origin, Record
from detectors.source_state import SourceState
from streams.codec import Invalid, Limits, decode
from streams.metrics import Metrics
from streams.topics import TopicPlan


class InMessage(NamedTuple):
    """An input message as the consumer saw it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class Sink(Protocol):
    """Where output messages go; `send` enqueues and returns the acknowledgement to await."""

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None
    ) -> Awaitable[Any]: ...


class StateStore(Protocol):
    """Per-source snapshots (JSON bytes), keyed by source; `put` returns its acknowledgement."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes, partition: int) -> Awaitable[Any]: ...


@dataclass(slots=True)
class BatchReport:
    """What one batch did (for metrics, the demo and tests)."""

    scored: int = 0
    replayed: int = 0
    dead: int = 0
    events: int = 0


class Processor:
    """Scores micro-batches of input messages; holds decoded states between batches."""

    def __init__(
        self,
        scorer: Scorer,
        store: StateStore,
        sink: Sink,
        topics: TopicPlan,
        limits: Limits,
        metrics: Metrics,
        model: str | None = None,
    ) -> None:
        self.scorer = scorer
        self.store = store
        self.sink = sink
        self.topics = topics
        self.limits = limits
        self.metrics = metrics
        self.model = model
        self._cache: dict[str, tuple[bytes, SourceState]] = {}

    async def process(self, messages: Sequence[InMessage]) -> BatchReport:
        started = time.perf_counter()
        records, dead = self._decode(messages)
        states, partitions = self._load(records)
        results = self.scorer.score_batch(records, states)

        pending: list[Awaitable[Any]] = []
        report = BatchReport(dead=len(dead))
        scored: list[Scored] = []
        cfg = self.scorer.config
        for res in results:
            if res is None:
                report.replayed += 1
                continue
            scored.append(res)
            key = res.record.source.encode()
            msg = orjson.dumps(score_message(res, cfg, self.model))
            pending.append(await self.sink.send(self.topics.scores, key, msg, None))
            if res.is_anomaly:
                event = orjson.dumps(anomaly_event(res, cfg, self.model))
                pending.append(await self.sink.send(self.topics.anomalies, key, event, None))
                report.events += 1
        for message, value, error, index in dead:
            pending.append(
                await self.sink.send(
                    self.topics.dlq, message.key, value, _dlq_headers(message, error, index)
                )
            )
        await asyncio.gather(*pending)

        touched = {res.record.source for res in scored}
        saves = [
            self._save(source, states[source], partitions.get(source, 0)) for source in touched
        ]
        await asyncio.gather(*saves)

        report.scored = len(scored)
        now = time.time()
        self.metrics.observe_batch(
            scored=report.scored,
            dead=(error.reason for _, _, error, _ in dead),
            replayed=report.replayed,
            scores=(r.score for r in scored),
            events=(("score", severity(r.p, cfg.target_fap)) for r in scored if r.is_anomaly),
            lags=(now - r.record.ts for r in scored[-1:]),
            warming=sum(r.warming_up for r in scored),
            seconds=time.perf_counter() - started,
        )
        self.metrics.sources.set(len(self._cache))
        return report

    def _decode(
        self, messages: Sequence[InMessage]
    ) -> tuple[list[Record], list[tuple[InMessage, bytes, Invalid, int | None]]]:
        records: list[Record] = []
        dead: list[tuple[InMessage, bytes, Invalid, int | None]] = []
        for msg in messages:
            origin = Origin(msg.topic, msg.partition, msg.offset)
            try:
                good, bad = decode(msg.value, origin, self.limits)
            except Invalid as exc:
                dead.append((msg, msg.value or b"", exc, None))
                continue
            records.extend(good)
            for item in bad:
                dead.append((msg, orjson.dumps(item.element), item.error, item.index))
        return records, dead

    def _load(self, records: Sequence[Record]) -> tuple[dict[str, SourceState], dict[str, int]]:
        """The current state of every source in the batch, and the partition it arrived on."""
        states: dict[str, SourceState] = {}
        partitions: dict[str, int] = {}
        for rec in records:
            if rec.origin is not None:
                partitions[rec.source] = rec.origin.partition
            if rec.source in states:
                continue
            blob = self.store.get(rec.source.encode())
            cached = self._cache.get(rec.source)
            if blob is None:
                states[rec.source] = self.scorer.new_source()
            elif cached is not None and cached[0] is blob:
                states[rec.source] = cached[1]
            else:  # restored from the changelog, or changed by another worker
                states[rec.source] = SourceState.from_json(orjson.loads(blob), self.scorer.suite)
        return states, partitions

    def _save(self, source: str, state: SourceState, partition: int) -> Awaitable[Any]:
        blob = orjson.dumps(state.to_json(self.scorer.suite))
        self._cache[source] = (blob, state)
        return self.store.put(source.encode(), blob, partition)


def _dlq_headers(msg: InMessage, error: Invalid, index: int | None) -> list[tuple[str, bytes]]:
    headers = [
        ("error", str(error).encode()),
        ("source_topic", msg.topic.encode()),
        ("source_partition", str(msg.partition).encode()),
        ("source_offset", str(msg.offset).encode()),
    ]
    if index is not None:
        headers.append(("record_index", str(index).encode()))
    return headers
