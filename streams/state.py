"""The one owner of a source's state between batches: load, cache, dirty, save, evict, and the
acknowledgement of the input a save covers.

Delivery without transactions (docs/delivery.md): a batch is scored against the states as they
were and its outputs are published and acknowledged first; the new states stay here, dirty. At a
checkpoint (every `flush_interval`, or when the stream goes quiet) every dirty state is written
to the store, each carrying the input offsets it has applied, the writes are awaited, and only
then is the input they cover acknowledged to the consumer, so offsets are committed only behind
saved state. A crash replays what was not saved: against the saved states it produces the same
messages again (same ids); records the saved states have applied are recognised and skipped.
Holding scored-but-unsaved batches is bounded by the interval and spares writing a busy source's
state after every micro-batch.

What cannot go on fails loudly, never hangs or loops: a save that fails or is not acknowledged
within `save_deadline` raises `StateSaveError` (the worker exits, a restart replays), naming the
source and its size. A stored state that cannot be read (bad JSON, an unknown layout version, a
shape this suite does not save) is logged, counted and the source starts cold: raising would
crash every restart on the same entry. A source keeps at most `max_source_signals` signal names
(its state must fit one changelog message): a record that would add more is refused and goes
to the dead letters (`too_many_signals`). Eviction counts from the wall-clock time a source was
last seen, saved in its state, so restarts do not restart its clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import orjson

from detectors.engine import BatchOutcome, Scorer
from detectors.records import Record
from detectors.source_state import MAX_SOURCE_SIGNALS, SourceState, UnreadableState
from streams.metrics import Metrics
from streams.structs import TP, Acker, DeadLetter, InMessage, StateStore

log = logging.getLogger(__name__)

SAVE_DEADLINE = 30.0
"""Seconds a checkpoint's writes may take before the worker gives up (and exits): a healthy
broker acknowledges in milliseconds; a write that never completes would hold the lock forever."""


class StateSaveError(RuntimeError):
    """A state write failed or was not acknowledged in time: the worker must exit and replay."""


class SourceStates:
    """Per-source detector states over a `StateStore`, with the checkpoint that saves and acks.

    `lock` makes batches, checkpoints and model swaps take turns: whoever holds it sees every
    state either before or after a whole batch.
    """

    def __init__(
        self,
        scorer: Scorer,
        store: StateStore,
        metrics: Metrics,
        flush_interval: float = 0.5,
        source_ttl: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        max_source_signals: int = MAX_SOURCE_SIGNALS,
        save_deadline: float = SAVE_DEADLINE,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.scorer = scorer
        self.store = store
        self.metrics = metrics
        self.flush_interval = flush_interval
        self.source_ttl = source_ttl
        self.clock = clock
        """Monotonic: save intervals."""
        self.max_source_signals = max_source_signals
        self.save_deadline = save_deadline
        self.wall = wall
        """Epoch seconds: when sources were last seen (saved in their state, for eviction)."""
        self.lock = asyncio.Lock()
        self.acker: Acker | None = None
        self.restoring = False
        """True while a rebalance restores the table (set by the app): no eviction meanwhile, as a
        half-restored table may hold an old version of a source's state."""
        self._cache: dict[str, tuple[bytes | None, SourceState]] = {}
        """Source -> (the stored snapshot it was loaded from or saved as, the live state)."""
        self._dirty: dict[str, int] = {}
        """Sources scored since the last save -> the input partition their records came from."""
        self._seen: dict[str, float] = {}
        """Source -> wall-clock time of its last record (for eviction)."""
        self._resets: set[tuple[str, int]] = set()
        """Input (topic, partition)s whose offset reset was logged (once per process)."""
        self._events: list[Any] = []
        self._holes: list[tuple[TP, int, int]] = []
        self._saved = clock()
        self._swept = clock()

    # -- a batch: load before scoring, mark after publishing ------------------------------------

    def load(self, records: Sequence[Record]) -> tuple[dict[str, SourceState], dict[str, int]]:
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
                state = cached[1]  # ours, possibly ahead of the store by unsaved batches
            elif blob is None:
                state = self.scorer.new_source()
            else:  # restored from the changelog, or written by another worker since
                state = self._read(rec.source, blob)
            self._cache[rec.source] = (blob, state)
            states[rec.source] = state
        return states, partitions

    def _read(self, source: str, blob: bytes) -> SourceState:
        """The stored state, or a cold one if it cannot be read (logged and counted)."""
        try:
            return SourceState.from_bytes(blob, self.scorer.suite)
        except UnreadableState as exc:
            log.warning(
                "source %s: saved state unreadable (%s, %d bytes), starting it cold",
                source,
                exc,
                len(blob),
            )
            self.metrics.state_unreadable.labels(reason=exc.reason).inc()
            return self.scorer.new_source()

    def score(self, records: Sequence[Record], states: dict[str, SourceState]) -> BatchOutcome:
        """Score against `states` with the signal cap; offset resets logged and counted."""
        outcome = self.scorer.score(records, states, self.max_source_signals)
        for (topic, partition), n in outcome.resets.items():
            self.metrics.offset_resets.inc(n)
            if (topic, partition) not in self._resets:
                self._resets.add((topic, partition))
                log.warning(
                    "input %s partition %d: records at or below offsets their sources' states "
                    "applied, newer than anything they learnt: the topic was recreated or its "
                    "offsets reset; scoring them (logged once)",
                    topic,
                    partition,
                )
        return outcome

    @staticmethod
    def refused(
        outcome: BatchOutcome, records: Sequence[Record], messages: Sequence[InMessage]
    ) -> list[DeadLetter]:
        """The dead letters of the records the scorer refused: the record itself (the element
        of an array message, with its index)."""
        if not outcome.rejected:
            return []
        by_place = {(m.topic, m.partition, m.offset): m for m in messages}
        parsed: dict[int, Any] = {}
        letters = []
        for i, error in outcome.rejected:
            origin = records[i].origin
            assert origin is not None  # records from messages always carry their origin
            msg = by_place[(origin.topic, origin.partition, origin.offset)]
            body = parsed.get(id(msg))
            if body is None:
                body = parsed[id(msg)] = orjson.loads(msg.value or b"null")
            if isinstance(body, list):
                letters.append(DeadLetter(msg, orjson.dumps(body[origin.item]), error, origin.item))
            else:
                letters.append(DeadLetter(msg, msg.value or b"", error, None))
        return letters

    def changed(self, sources: Iterable[str], partitions: dict[str, int]) -> None:
        """These sources' states moved on in a batch whose outputs are acknowledged."""
        now = self.wall()
        cache = self._cache
        for source in dict.fromkeys(sources):  # once per source, not per record
            self._dirty[source] = partitions.get(source, 0)
            self._seen[source] = now
            cache[source][1].seen = now
        self.metrics.sources.set(len(self._seen))

    @property
    def dirty(self) -> int:
        """Sources whose state changed since the last save."""
        return len(self._dirty)

    # -- checkpoints ----------------------------------------------------------------------------

    async def done(self, events: Sequence[Any], holes: Sequence[tuple[TP, int, int]]) -> None:
        """Under `lock`, after a batch was published: its input is acked after the next save,
        which happens now if the last one is `flush_interval` old."""
        self._events.extend(events)
        self._holes.extend(holes)
        if self.clock() - self._saved >= self.flush_interval:
            await self.checkpoint()

    async def tick(self) -> None:
        """From a timer: a quiet stream's last batches are saved and acked too, and sources
        without a record for `source_ttl` are forgotten."""
        if self._events and not self.lock.locked():
            async with self.lock:
                await self.checkpoint()
        sweep_every = max(self.source_ttl / 10, 1.0)
        due = self.clock() - self._swept >= sweep_every
        if self.source_ttl > 0 and due and not self.restoring:
            async with self.lock:
                await self.evict(self.source_ttl)
            self._swept = self.clock()

    async def checkpoint(self) -> None:
        """Save, then acknowledge the input (and report the holes) the save covers."""
        await self.flush()
        if self.acker is not None:
            await self.acker.ack(self._events, self._holes)
        self._events.clear()
        self._holes.clear()
        self._saved = self.clock()

    async def flush(self) -> int:
        """Save every dirty source's state and await the writes; returns how many were saved."""
        saves: list[tuple[str, int, Awaitable[Any]]] = []
        written = 0
        for source, partition in self._dirty.items():
            state = self._cache[source][1]
            blob = orjson.dumps(state.to_json(self.scorer.suite))
            written += len(blob)
            self._cache[source] = (blob, state)
            saves.append((source, len(blob), self.store.put(source.encode(), blob, partition)))
        if saves:
            await self._confirm(saves)
            self.metrics.state_bytes.set(written)
        count = len(self._dirty)
        self._dirty.clear()
        return count

    async def _confirm(self, saves: Sequence[tuple[str, int, Awaitable[Any]]]) -> None:
        """Await every write within `save_deadline`; else log each failure and raise."""
        if not saves:
            return
        futures = {asyncio.ensure_future(fut): (source, size) for source, size, fut in saves}
        done, pending = await asyncio.wait(futures, timeout=self.save_deadline)
        failures = [(futures[f], "not acknowledged in time") for f in pending]
        for f in done:
            exc = None if f.cancelled() else f.exception()
            if f.cancelled() or exc is not None:
                failures.append((futures[f], "cancelled" if exc is None else repr(exc)))
        if not failures:
            return
        for (source, size), why in failures[:10]:
            log.critical("state of source %s (%d bytes) not saved: %s", source, size, why)
        (source, size), why = failures[0]
        raise StateSaveError(
            f"{len(failures)} state write(s) failed or were not acknowledged within "
            f"{self.save_deadline:g} s, the first of source {source} ({size} bytes): {why}"
        )

    async def evict(self, ttl: float) -> int:
        """Forget sources without a record for `ttl` seconds: state, cache, table entry, and
        the scorer's caches.

        Sources restored from the changelog count from the last-seen time saved in their state
        (states saved before it was kept count from now). A source that comes back after
        eviction warms up again.
        """
        now = self.wall()
        deletes = []
        gone = []
        for key in self.store.keys():  # noqa: SIM118 - a StateStore, not a dict
            source = key.decode()
            seen = self._seen.get(source)
            if seen is None:
                seen = self._seen[source] = self._saved_seen(source, key, now)
            if now - seen > ttl and source not in self._dirty:
                deletes.append((source, 0, self.store.delete(key)))
                gone.append(source)
        await self._confirm(deletes)  # a tombstone that never lands must not hang the lock
        self.forget(gone)
        return len(deletes)

    def forget(self, sources: Iterable[str]) -> None:
        """Drop these sources from memory without touching the store: evicted (their tombstones
        are written), or their partitions moved to another worker, which restores them from the
        changelog (save first)."""
        gone = list(sources)
        for source in gone:
            self._cache.pop(source, None)
            self._dirty.pop(source, None)
            self._seen.pop(source, None)
        self.scorer.forget(gone)
        self.metrics.forget_sources(gone)
        self.metrics.sources.set(len(self._seen))

    def _saved_seen(self, source: str, key: bytes, now: float) -> float:
        """When a source not seen in this process was last seen, from its stored state."""
        cached = self._cache.get(source)
        if cached is not None and cached[1].seen is not None:
            return cached[1].seen
        blob = self.store.get(key)
        try:
            seen = orjson.loads(blob)["seen"] if blob is not None else None
            return now if seen is None else float(seen)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return now  # unreadable or older than `seen`: counted from now
