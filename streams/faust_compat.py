"""Every use of Faust beyond its documented API, in one place, with the version it was checked on.

faust-streaming is pinned (pyproject.toml) and `tests/streams/test_faust_compat.py` fails when the
installed version differs from `FAUST_VERSION`: re-check each item below against the new release
before moving the pin.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

import faust

from streams.structs import TP

FAUST_VERSION = "0.15.3"
"""The faust-streaming release every workaround below was written for and tested on."""


class FaustAcker:
    """`Acker` for the agent's stream; takes Faust's offset-gap bookkeeping over.

    faust 0.15.3, `Consumer._add_gap` (private): Faust records every offset jump it sees as a gap
    that counts as acked, so it can commit past records it lost itself (see `streams.continuity`).
    On this consumer instance the jumps Faust sees are ignored; the holes the guard has filled (or
    confirmed empty) are reported through the original method once their batch is saved.
    """

    def __init__(self, app: faust.App, stream: Any) -> None:
        consumer: Any = app.consumer
        self._stream = stream
        self._record_gap = getattr(consumer, "_original_add_gap", consumer._add_gap)

        async def ignore_gap(tp: Any, offset_from: int, offset_to: int) -> None:
            return None

        consumer._original_add_gap = self._record_gap
        consumer._add_gap = ignore_gap

    async def ack(self, events: Sequence[Any], holes: Sequence[tuple[TP, int, int]]) -> None:
        for tp, first, last in holes:
            await self._record_gap(tp, first, last)
        for event in events:
            await self._stream.ack(event)


def save_while_draining(app: faust.App, save: Callable[[], Awaitable[None]]) -> None:
    """Keep saving (and so acking) held events while Faust waits for them to be acked.

    faust 0.15.3, `Consumer.wait_empty` (public, called by `App._stop_consumer` on stop and by
    `App._on_partitions_revoked`): on stop, `Service.stop` has already ended every app timer
    when the consumer waits for the events taken but not acked, and the timer is what saves a
    quiet stream's held batches, so a worker stopped under load waited forever (SIGTERM ignored
    for 60 s and more). `on_before_shutdown` runs only after that wait. While the wait lasts,
    `save` runs every `DRAIN_EVERY` seconds on this consumer instance.
    """
    consumer: Any = app.consumer
    wait_empty = getattr(consumer, "_original_wait_empty", consumer.wait_empty)

    async def saving_wait_empty() -> None:
        async def keep_saving() -> None:
            while True:
                await save()
                await asyncio.sleep(DRAIN_EVERY)

        saver = asyncio.ensure_future(keep_saving())
        try:
            await wait_empty()
        finally:
            saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await saver

    consumer._original_wait_empty = wait_empty
    consumer.wait_empty = saving_wait_empty


DRAIN_EVERY = 0.1
"""Seconds between saves while Faust drains the agent's events (stop, revoke)."""


def batches(stream: Any, size: int, within: float) -> AsyncIterator[Sequence[Any]]:
    """Micro-batches of events that Faust does not ack by itself.

    faust 0.15.3, `Stream.noack_take` (public on `Stream`, missing from `StreamT`): `take()` and
    `take_events()` ack a batch when the generator is closed, also when the worker stops in the
    middle of it, so a batch whose state was never saved could be committed. Events taken here
    are acked by the state owner (`streams.state`), after the state covering them is saved.
    """
    taken: AsyncIterator[Sequence[Any]] = stream.noack_take(size, within=within)
    return taken


class TableStore:
    """`StateStore` over a Faust table, writing the changelog partition explicitly.

    faust 0.15.3, `Table.data` and `Table.send_changelog(partition, ...)` (undocumented):
    `table[key] = v` would pick the changelog partition from Faust's *current event*, which in a
    micro-batch is just the last one. We write to the partition the source's records came from,
    which is the partition Faust restores with the input partition after a rebalance. Entries
    restored from the changelog carry their partition in the memory store's `_key_partition`
    (private), needed to send a tombstone to the right partition.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self._partition: dict[bytes, int] = {}
        self._active: set[int] | None = None
        """The input (= changelog) partitions assigned to this worker; None: not known yet."""

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self.table.data.get(key)
        return value

    def put(self, key: bytes, value: bytes, partition: int) -> Awaitable[Any]:
        self.table.data[key] = value
        self._partition[key] = partition
        fut: Awaitable[Any] = self.table.send_changelog(
            partition, key, value, key_serializer="raw", value_serializer="raw"
        )
        return fut

    def keys(self) -> list[bytes]:
        """The entries of this worker's active partitions (not standby copies of others')."""
        if self._active is None:
            return list(self.table.data.keys())
        restored = getattr(self.table.data, "_key_partition", {})
        active = self._active
        return [
            key
            for key in self.table.data.keys()  # noqa: SIM118 - a Faust store, not a dict
            if self._partition.get(key, restored.get(key, -1)) in active
            or (key not in self._partition and key not in restored)
        ]

    def keep_partitions(self, partitions: Iterable[int]) -> list[bytes]:
        """Forget (no tombstone) the entries of every changelog partition not in `partitions`,
        the ones this worker was just assigned; returns the keys dropped.

        faust 0.15.3: the memory store drops restored keys of partitions no longer assigned
        only when the next recovery completes, and never the keys written through `put`; until
        then `keys()` would offer them to TTL eviction, whose tombstones would erase the state
        the partition's new owner keeps."""
        kept = self._active = set(partitions)
        restored = getattr(self.table.data, "_key_partition", {})
        gone = []
        for key in list(self.table.data.keys()):
            partition = self._partition.get(key, restored.get(key))
            if partition is not None and partition not in kept:
                self.table.data.pop(key, None)
                self._partition.pop(key, None)
                restored.pop(key, None)
                gone.append(key)
        return gone

    def delete(self, key: bytes) -> Awaitable[Any]:
        """Drop the entry and write a tombstone, so the compacted changelog forgets it too."""
        self.table.data.pop(key, None)
        restored = getattr(self.table.data, "_key_partition", {})
        partition = self._partition.pop(key, restored.get(key, 0))
        fut: Awaitable[Any] = self.table.send_changelog(
            partition, key, None, key_serializer="raw", value_serializer="raw"
        )
        return fut


class RecoveryWatch:
    """Re-seek changelog partitions whose table recovery stopped moving.

    faust 0.15.3, `Recovery.active_tps`, `active_offsets`, `active_highwaters`, `in_recovery`
    (undocumented) and `Consumer.seek_wait`: a worker that took over partitions in a burst of
    rebalances was seen waiting forever for changelog records ("No event received for active tp
    ... since recovery start"), the consumer no longer fetching them. A partition still short
    of its high watermark whose applied offset has not moved for `stall` seconds is sought back
    to its next offset: re-applying changelog records is harmless (the last write of a key wins).
    """

    def __init__(self, app: faust.App, stall: float, clock: Callable[[], float]) -> None:
        self._app = app
        self._stall = stall
        self._clock = clock
        self._since: dict[Any, tuple[int, float]] = {}

    async def look(self) -> list[Any]:
        """Re-seek the stalled partitions; returns them."""
        tables: Any = self._app.tables
        recovery = tables.recovery
        if not recovery.in_recovery:
            self._since.clear()
            return []
        now, stalled = self._clock(), {}
        for tp in list(recovery.active_tps):
            have = recovery.active_offsets.get(tp, -1)
            if have >= recovery.active_highwaters.get(tp, -1):
                self._since.pop(tp, None)
                continue
            last = self._since.get(tp)
            if last is None or last[0] != have:
                self._since[tp] = (have, now)
            elif now - last[1] >= self._stall:
                stalled[tp] = have + 1
                self._since[tp] = (have, now)
        if stalled:
            consumer: Any = self._app.consumer
            await consumer.seek_wait(stalled)
        return list(stalled)
