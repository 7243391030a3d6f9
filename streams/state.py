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
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from detectors.engine import Scorer
from detectors.records import Record
from detectors.source_state import SourceState
from streams.metrics import Metrics
from streams.structs import TP, Acker, StateStore


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
    ) -> None:
        self.scorer = scorer
        self.store = store
        self.metrics = metrics
        self.flush_interval = flush_interval
        self.source_ttl = source_ttl
        self.clock = clock
        self.lock = asyncio.Lock()
        self.acker: Acker | None = None
        self._cache: dict[str, tuple[bytes | None, SourceState]] = {}
        """Source -> (the stored snapshot it was loaded from or saved as, the live state)."""
        self._dirty: dict[str, int] = {}
        """Sources scored since the last save -> the input partition their records came from."""
        self._seen: dict[str, float] = {}
        """Source -> clock time of its last record in this process (for eviction)."""
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
                state = SourceState.from_json(orjson.loads(blob), self.scorer.suite)
            self._cache[rec.source] = (blob, state)
            states[rec.source] = state
        return states, partitions

    def changed(self, sources: Iterable[str], partitions: dict[str, int]) -> None:
        """These sources' states moved on in a batch whose outputs are acknowledged."""
        now = self.clock()
        for source in sources:
            self._dirty[source] = partitions.get(source, 0)
            self._seen[source] = now
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
        if self.source_ttl > 0 and self.clock() - self._swept >= sweep_every:
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
