"""The one owner of a source's state between batches: load, cache, dirty, save, evict, and the
acknowledgement of the input a save covers.

Delivery without transactions (docs/delivery.md): a batch is scored against the states as they
were and its outputs are published and acknowledged first; the new states stay here, unsaved. At
a checkpoint (every `flush_interval`, or when the stream goes quiet) the states that are due
(`streams.saves`: their oldest unsaved record is `save_interval` old, or they have
`save_records` unsaved records; all of them at a rebalance or a stop) are written to the store,
each carrying the input offsets it has applied, and the writes are awaited; then the input is
acknowledged to the consumer up to, per partition, the first record of a source still unsaved,
so offsets are committed only behind saved state. A crash replays from there: against the saved
states it produces the same messages again (same ids); records the saved states have applied are
recognised and skipped. Deferring saves spares rewriting a whole state (~52 KB) for every few
records of a slowly-updating source.

What cannot go on fails loudly, never hangs or loops: a save that fails or is not acknowledged
within `save_deadline` raises `StateSaveError` (`streams.saves`; the worker exits, a restart
replays), naming the source and its size. A stored state that cannot be read (bad JSON, an
unknown layout version, a shape this suite does not save) is logged, counted and the source
starts cold: raising would crash every restart on the same entry. A source keeps at most
`max_source_signals` signal names (its state must fit one changelog message), and a worker
holds at most `max_sources` sources (memory): a record that would exceed either is refused and
goes to the dead letters (`too_many_signals`, `too_many_sources`). Eviction counts from the
wall-clock time a source was last seen, saved in its state, so restarts do not restart its
clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any

import orjson

from detectors.engine import BatchOutcome, Scorer
from detectors.records import Invalid, Record
from detectors.source_state import (
    MAX_SOURCE_SIGNALS,
    SourceState,
    UnreadableState,
)
from streams.codec import too_many_sources
from streams.formats import elements
from streams.metrics import Metrics
from streams.saves import SAVE_DEADLINE, HeldInput, Hole, SaveBook, confirm, saved_seen
from streams.settings import MAX_SOURCES
from streams.structs import Acker, DeadLetter, InMessage, StateStore

log = logging.getLogger(__name__)


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
        save_interval: float = 0.0,
        save_records: int = 0,
        max_sources: int = MAX_SOURCES,
    ) -> None:
        self.scorer = scorer
        self.store = store
        self.metrics = metrics
        self.flush_interval = flush_interval
        """Seconds between checkpoints (saves of what is due, acks of what they cover)."""
        self.source_ttl = source_ttl
        self.clock = clock
        """Monotonic: checkpoint and save intervals."""
        self.max_source_signals = max_source_signals
        self.max_sources = max_sources
        self.save_deadline = save_deadline
        self.wall = wall
        """Epoch seconds: when sources were last seen (saved in their state, for eviction)."""
        self.lock = asyncio.Lock()
        self.acker: Acker | None = None
        self.restoring = False
        """True while a rebalance restores the table (set by the app): no eviction meanwhile, as a
        half-restored table may hold an old version of a source's state."""
        self.book = SaveBook(save_interval, save_records)
        """Sources whose live state is ahead of the store, and the commit floors they set."""
        self._cache: dict[str, tuple[bytes | None, SourceState]] = {}
        """Source -> (the stored snapshot it was loaded from or saved as, the live state)."""
        self.held: set[str] = set()
        """Sources this worker holds: loaded, or in the table of its partitions (the cap; /status
        reads it in the event loop, only this class changes it)."""
        self._full = False
        """The source cap was reached (logged once until it is not)."""
        self._seen: dict[str, float] = {}
        """Source -> wall-clock time of its last record (for eviction)."""
        self._resets: set[tuple[str, int]] = set()
        """Input (topic, partition)s whose offset reset was logged (once per process)."""
        self._input = HeldInput()
        self._saved = clock()
        self._swept = clock()
        metrics.max_sources.set(max_sources)

    def live(self, source: str) -> SourceState | None:
        """A loaded source's live (maybe unsaved) state, for /status."""
        cached = self._cache.get(source)
        return None if cached is None else cached[1]

    # -- a batch: load before scoring, mark after publishing ------------------------------------

    def load(
        self, records: Sequence[Record]
    ) -> tuple[dict[str, SourceState], list[tuple[Record, Invalid]]]:
        """The current state of every source in the batch; the records of new sources beyond
        `max_sources`, refused (`too_many_sources`: the source gets no state)."""
        states: dict[str, SourceState] = {}
        refused: list[tuple[Record, Invalid]] = []
        turned_away: dict[str, Invalid] = {}
        held = self.held
        for rec in records:
            source = rec.source
            if source in states:
                continue
            error = turned_away.get(source)
            if error is not None:
                refused.append((rec, error))
                continue
            blob = self.store.get(source.encode())
            cached = self._cache.get(source)
            if cached is not None and cached[0] is blob:
                state = cached[1]  # ours, possibly ahead of the store by unsaved batches
            elif blob is None:
                if cached is None and len(held) >= self.max_sources:
                    turned_away[source] = error = self._over_cap(source)
                    refused.append((rec, error))
                    continue
                state = self.scorer.new_source()
            else:  # restored from the changelog, or written by another worker since
                state = self._read(source, blob)
            self._cache[source] = (blob, state)
            held.add(source)
            states[source] = state
        self.metrics.sources.set(len(held))
        return states, refused

    def _over_cap(self, source: str) -> Invalid:
        if not self._full:
            self._full = True
            log.warning(
                "this worker holds %d sources (max_sources): records of new sources go to the "
                "dead letters (too_many_sources) until sources are evicted or move away",
                len(self.held),
            )
        return too_many_sources(source, self.max_sources)

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
    def letters(
        refused: Sequence[tuple[Record, Invalid]], messages: Sequence[InMessage]
    ) -> list[DeadLetter]:
        """The dead letters of refused records: the record itself (the element of an array
        message, with its index)."""
        if not refused:
            return []
        by_place = {(m.topic, m.partition, m.offset): m for m in messages}
        split: dict[int, list[bytes] | None] = {}
        letters = []
        for record, error in refused:
            origin = record.origin
            assert origin is not None  # records from messages always carry their origin
            msg = by_place[(origin.topic, origin.partition, origin.offset)]
            if id(msg) not in split:
                split[id(msg)] = elements(msg.value)
            parts = split[id(msg)]
            if parts is not None and 0 <= origin.item < len(parts):
                letters.append(DeadLetter(msg, parts[origin.item], error, origin.item))
            else:
                letters.append(DeadLetter(msg, msg.value or b"", error, None))
        return letters

    def changed(
        self, records: Iterable[Record], old: Collection[tuple[str, int, int]] = ()
    ) -> None:
        """These records moved their sources' states on, in a batch whose outputs are
        acknowledged: the states are unsaved, and so is the input from these records on.
        `old`: (topic, partition, offset) of messages a save interval old already."""
        now, mark, monotonic = self.wall(), self.book.mark, self.clock()
        sources: dict[str, None] = {}
        for rec in records:
            o = rec.origin
            is_old = bool(old) and o is not None and (o.topic, o.partition, o.offset) in old
            mark(rec.source, o, monotonic, is_old)
            sources[rec.source] = None
        cache, seen = self._cache, self._seen
        for source in sources:  # once per source, not per record
            seen[source] = now
            cache[source][1].seen = now
        self.metrics.unsaved.set(len(self.book))

    @property
    def dirty(self) -> int:
        """Sources whose state changed since it was last saved."""
        return len(self.book)

    # -- checkpoints ----------------------------------------------------------------------------

    async def done(self, events: Sequence[Any], holes: Sequence[Hole]) -> None:
        """Under `lock`, after a batch was published: its input is acked once the states it
        changed are saved; a checkpoint runs now if the last one is `flush_interval` old."""
        self._input.hold(events, holes)
        if self.clock() - self._saved >= self.flush_interval:
            await self.checkpoint()

    async def tick(self) -> None:
        """From a timer: a quiet stream's sources get saved and its input acked too, and
        sources without a record for `source_ttl` are forgotten."""
        if (self._input or self.book) and not self.lock.locked():
            async with self.lock:
                await self.checkpoint()
        sweep_every = max(self.source_ttl / 10, 1.0)
        due = self.clock() - self._swept >= sweep_every
        if self.source_ttl > 0 and due and not self.restoring:
            async with self.lock:
                await self.evict(self.source_ttl)
            self._swept = self.clock()

    async def checkpoint(self, everything: bool = False) -> None:
        """Save what is due (`everything`: every unsaved source, before a rebalance or a stop),
        then acknowledge the input (and report the holes) below the first record, per
        partition, of a source still unsaved."""
        await self.flush(everything)
        events, holes = self._input.release(self.book.floors() if self.book else None)
        if self.acker is not None and (events or holes):
            await self.acker.ack(events, holes)
        self._saved = self.clock()

    async def flush(self, everything: bool = True) -> int:
        """Save the unsaved sources' states (only those due unless `everything`) and await the
        writes; returns how many were saved."""
        saves: list[tuple[str, int, Awaitable[Any]]] = []
        written = 0
        due = self.book.due(self.clock(), everything)
        for source, partition in self.book.take(due):
            state = self._cache[source][1]
            blob = orjson.dumps(state.to_json(self.scorer.suite))
            written += len(blob)
            self._cache[source] = (blob, state)
            saves.append((source, len(blob), self.store.put(source.encode(), blob, partition)))
        if saves:
            await confirm(saves, self.save_deadline)
            self.metrics.state_bytes.set(written)
            self.metrics.state_written.inc(written)
        self.metrics.unsaved.set(len(self.book))
        return len(saves)

    # -- the sources held -----------------------------------------------------------------------

    def old(self, messages: Sequence[InMessage]) -> set[tuple[str, int, int]]:
        """The messages whose timestamp is a save interval old already (replays after a crash,
        a backlog): their records' sources are saved at the next checkpoint."""
        interval = self.book.interval
        if interval <= 0:
            return set()
        cutoff = self.wall() - interval
        return {
            (m.topic, m.partition, m.offset)
            for m in messages
            if m.timestamp is not None and m.timestamp <= cutoff
        }

    def adopt(self) -> int:
        """A restore finished: the table's sources (of this worker's partitions) are held, and
        their saved last-seen times are known, read cheaply (`saved_seen`); returns how many
        are held."""
        now = self.wall()
        for key in self.store.keys():  # noqa: SIM118 - a StateStore, not a dict
            source = key.decode()
            self.held.add(source)
            if source not in self._seen:
                self._seen[source] = self._saved_seen(source, key, now)
        self.metrics.sources.set(len(self.held))
        return len(self.held)

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
            if now - seen > ttl and source not in self.book:
                deletes.append((source, 0, self.store.delete(key)))
                gone.append(source)
        # a tombstone that never lands must not hang the lock
        await confirm(deletes, self.save_deadline)
        self.forget(gone)
        return len(deletes)

    def forget(self, sources: Iterable[str]) -> None:
        """Drop these sources from memory without touching the store: evicted (their tombstones
        are written), or their partitions moved to another worker, which restores them from the
        changelog (save first)."""
        gone = list(sources)
        for source in gone:
            self._cache.pop(source, None)
            self._seen.pop(source, None)
            self.held.discard(source)
        self.book.drop(gone)
        self.scorer.forget(gone)
        self.metrics.forget_sources(gone)
        self.metrics.sources.set(len(self.held))
        self.metrics.unsaved.set(len(self.book))
        if len(self.held) < self.max_sources:
            self._full = False

    def _saved_seen(self, source: str, key: bytes, now: float) -> float:
        """When a source not seen in this process was last seen, from its stored state."""
        cached = self._cache.get(source)
        if cached is not None and cached[1].seen is not None:
            return cached[1].seen
        blob = self.store.get(key)
        seen = None if blob is None else saved_seen(blob)
        return now if seen is None else seen
