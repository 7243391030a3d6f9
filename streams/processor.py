"""One micro-batch, top to bottom: decode+validate -> per-source state -> score -> publish, and
from time to time -> save.

Delivery without transactions (DESIGN.md, "Delivery and state"): a batch is scored against the
states as they were and its score messages, events and dead letters are published and their
acknowledgements awaited (`process`). The new states stay in memory, marked dirty; `flush` writes
them to the table, each carrying the input offsets it has applied, and awaits those writes. The
caller acks input events only after a flush that covers them, so offsets are committed only behind
saved state. A crash replays what was not flushed: against the saved states it produces the same
messages again (same ids); records the saved states have applied are recognised and skipped.
Flushing once a second instead of once a batch writes each busy source's state once a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import orjson

from detectors.engine import Scorer
from detectors.fusion import severity
from detectors.messages import anomaly_event, score_message
from detectors.records import Invalid, Origin, Record
from detectors.results import Scored
from detectors.source_state import SourceState
from streams.codec import Limits, decode
from streams.metrics import Metrics
from streams.topics import TopicPlan


class InMessage(NamedTuple):
    """An input message as the consumer saw it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None
    """When the broker appended it (epoch seconds), for the processing-time histogram."""


class Sink(Protocol):
    """Where output messages go; `send` enqueues and returns the acknowledgement to await."""

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None
    ) -> Awaitable[Any]: ...

    async def send_many(
        self, topic: str, messages: Sequence[tuple[bytes, bytes]]
    ) -> list[Awaitable[Any]]:
        """Keyed messages without headers, in order per key; the acknowledgements to await."""
        ...


class StateStore(Protocol):
    """Per-source snapshots (JSON bytes), keyed by source; writes return their acknowledgement."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes, partition: int) -> Awaitable[Any]: ...

    def keys(self) -> list[bytes]: ...

    def delete(self, key: bytes) -> Awaitable[Any]: ...


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scorer = scorer
        self.store = store
        self.sink = sink
        self.topics = topics
        self.limits = limits
        self.metrics = metrics
        self.model = model
        self.clock = clock
        self._cache: dict[str, tuple[bytes | None, SourceState]] = {}
        """Source -> (the stored snapshot it was loaded from or saved as, the live state)."""
        self._dirty: dict[str, int] = {}
        """Sources scored since the last flush -> the input partition their records came from."""
        self._seen: dict[str, float] = {}
        """Source -> monotonic time of its last record in this process (for eviction)."""

    async def process(self, messages: Sequence[InMessage]) -> BatchReport:
        started = time.perf_counter()
        records, dead = self._decode(messages)
        states, partitions = self._load(records)
        results = self.scorer.score_batch(records, states)

        pending: list[Awaitable[Any]] = []
        report = BatchReport(dead=len(dead))
        scored: list[Scored] = []
        outputs: list[tuple[bytes, bytes]] = []
        cfg = self.scorer.config
        for res in results:
            if res is None:
                report.replayed += 1
                continue
            scored.append(res)
            key = res.record.source.encode()
            outputs.append((key, orjson.dumps(score_message(res, cfg, self.model))))
            if res.alert:
                event = orjson.dumps(anomaly_event(res, cfg, self.model))
                pending.append(await self.sink.send(self.topics.anomalies, key, event, None))
                report.events += 1
        pending.extend(await self.sink.send_many(self.topics.scores, outputs))
        for message, value, error, index in dead:
            pending.append(
                await self.sink.send(
                    self.topics.dlq, message.key, value, _dlq_headers(message, error, index)
                )
            )
        await asyncio.gather(*pending)
        now = self.clock()
        for res in scored:
            self._dirty[res.record.source] = partitions.get(res.record.source, 0)
            self._seen[res.record.source] = now

        report.scored = len(scored)
        self.metrics.observe_batch(
            scored=(
                (r.record.source, r.score, r.is_anomaly, r.warming_up, r.record.ts) for r in scored
            ),
            dead=(error.reason for _, _, error, _ in dead),
            replayed=report.replayed,
            events=(("score", severity(r.p, cfg.target_fap)) for r in scored if r.alert),
            appended=(m.timestamp for m in messages if m.timestamp is not None),
            now=time.time(),
            seconds=time.perf_counter() - started,
        )
        self.metrics.sources.set(len(self._seen))
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

    @property
    def dirty(self) -> int:
        """Sources whose state changed since the last flush."""
        return len(self._dirty)

    async def flush(self) -> int:
        """Save every dirty source's state and await the writes; returns how many were saved."""
        saves = []
        written = 0
        for source, partition in self._dirty.items():
            state = self._cache[source][1]
            blob = orjson.dumps(state.to_json(self.scorer.suite))
            written += len(blob)
            self._cache[source] = (blob, state)
            saves.append(self.store.put(source.encode(), blob, partition))
        await asyncio.gather(*saves)
        if saves:
            self.metrics.state_bytes.set(written)
        count = len(self._dirty)
        self._dirty.clear()
        return count

    async def evict(self, ttl: float) -> int:
        """Forget sources without a record for `ttl` seconds: state, cache, table entry.

        Sources restored from the changelog but not seen yet get `ttl` from now (a restart
        restarts their clock). A source that comes back after eviction warms up again.
        """
        now = self.clock()
        deletes = []
        gone = []
        for key in self.store.keys():  # noqa: SIM118 - a StateStore, not a dict
            source = key.decode()
            seen = self._seen.setdefault(source, now)
            if now - seen > ttl and source not in self._dirty:
                deletes.append(self.store.delete(key))
                self._cache.pop(source, None)
                del self._seen[source]
                gone.append(source)
        await asyncio.gather(*deletes)
        self.metrics.forget_sources(gone)
        self.metrics.sources.set(len(self._seen))
        return len(deletes)

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
            if cached is not None and cached[0] is blob:
                state = cached[1]  # ours, possibly ahead of the store by unflushed batches
            elif blob is None:
                state = self.scorer.new_source()
            else:  # restored from the changelog, or written by another worker since
                state = SourceState.from_json(orjson.loads(blob), self.scorer.suite)
            self._cache[rec.source] = (blob, state)
            states[rec.source] = state
        return states, partitions


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
