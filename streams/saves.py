"""When a source's state is saved, and how far the input may be committed meanwhile.

Saving every changed state at every checkpoint rewrote a slowly-updating source's whole state
(~52 KB) twice a second. A source is saved instead once its oldest unsaved record is
`interval` seconds old or it has `records` unsaved records (`SaveBook.due`), or when everything
must be saved (a rebalance, a stop). A record's age counts from when it was scored or, when that
is older, from its message's timestamp: records replayed after a crash are saved at the first
checkpoint, so workers that crash again and again still move the commit on.

Until a source is saved its records' input offsets must not be committed, or a crash would skip
them and lose what they taught the state: per input partition the commit is held below the
lowest offset of any record applied to a source not saved yet (`SaveBook.floors`), and the input
held back is released only below it (`HeldInput`). A crash replays from there: saved sources
skip those records (their state applied them), unsaved ones score them again against their
saved state, identically (same message ids).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import re
from collections import deque
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from detectors.records import Origin
from detectors.source_state import STATE_VERSION
from streams.structs import TP

log = logging.getLogger("streams.state")

SAVE_DEADLINE = 30.0
"""Seconds a checkpoint's writes may take before the worker gives up (and exits): a healthy
broker acknowledges in milliseconds; a write that never completes would hold the lock forever."""

Place = tuple[str, int]
"""An input (topic, partition)."""


@dataclass(slots=True)
class Unsaved:
    """A source whose live state is ahead of its saved one."""

    since: float
    """Monotonic time of its first unsaved record."""
    partition: int
    """The changelog partition its state goes to: that of its latest record."""
    records: int = 0
    floors: dict[Place, int] = field(default_factory=dict)
    """Input (topic, partition) -> the lowest offset of its unsaved records there."""


class SaveBook:
    """The sources whose states are not saved yet, and the commit floors they impose.

    `interval` 0 makes every changed source due at every checkpoint; `records` 0 sets no
    bound by count.
    """

    def __init__(self, interval: float = 0.0, records: int = 0) -> None:
        self.interval = interval
        self.records = records
        self._unsaved: dict[str, Unsaved] = {}
        """In the order they became unsaved, so the ones due by time are a prefix."""
        self._full: set[str] = set()
        """Sources with `records` unsaved records or more."""
        self._old: set[str] = set()
        """Sources with a record whose message was `interval` old when it was scored."""
        self._heaps: dict[Place, list[tuple[int, str]]] = {}
        """Per input partition, (offset, source) of floors, lazily cleaned: an item counts only
        while it is its (still unsaved) source's floor there."""

    def __len__(self) -> int:
        return len(self._unsaved)

    def __contains__(self, source: object) -> bool:
        return source in self._unsaved

    def mark(self, source: str, origin: Origin | None, now: float, old: bool = False) -> None:
        """A record of `source` (from `origin`) was applied to its live state; `old`: its
        message is `interval` old already (a replay after a crash, a backlog)."""
        entry = self._unsaved.get(source)
        if entry is None:
            entry = self._unsaved[source] = Unsaved(now, 0 if origin is None else origin.partition)
        entry.records += 1
        if self.records and entry.records >= self.records:
            self._full.add(source)
        if old:
            self._old.add(source)
        if origin is None:
            return
        entry.partition = origin.partition
        place = (origin.topic, origin.partition)
        floor = entry.floors.get(place)
        if floor is None or origin.offset < floor:
            entry.floors[place] = origin.offset
            heapq.heappush(self._heaps.setdefault(place, []), (origin.offset, source))

    def due(self, now: float, everything: bool = False) -> list[str]:
        """The sources to save now: all of them, or those old or full enough."""
        if everything or self.interval <= 0:
            return list(self._unsaved)
        oldest = now - self.interval
        due = []
        for source, entry in self._unsaved.items():
            if entry.since > oldest:
                break
            due.append(source)
        due.extend(s for s in self._full | self._old if self._unsaved[s].since > oldest)
        return due

    def take(self, sources: Iterable[str]) -> list[tuple[str, int]]:
        """These sources are being saved: (source, changelog partition) each."""
        out = []
        for source in sources:
            entry = self._unsaved.pop(source, None)
            if entry is not None:
                self._full.discard(source)
                self._old.discard(source)
                out.append((source, entry.partition))
        return out

    def drop(self, sources: Iterable[str]) -> None:
        """Forgotten sources (evicted, or moved to another worker after a save)."""
        self.take(sources)

    def floors(self) -> dict[Place, int]:
        """Per input partition with unsaved records, the lowest offset among them: nothing at
        or after it may be committed."""
        out: dict[Place, int] = {}
        for place, heap in list(self._heaps.items()):
            while heap:
                offset, source = heap[0]
                entry = self._unsaved.get(source)
                if entry is not None and entry.floors.get(place) == offset:
                    out[place] = offset
                    break
                heapq.heappop(heap)
            if not heap:
                del self._heaps[place]
        return out


Hole = tuple[TP, int, int]
"""(tp, first, last) offsets Faust never delivered, scored or known not to exist."""


class HeldInput:
    """Faust events and holes taken from the input, held until nothing at or before them waits
    for a save: released in offset order per partition, only below the partition's floor."""

    def __init__(self) -> None:
        self._held: dict[Place, deque[tuple[int, Any, bool]]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def hold(self, events: Sequence[Any], holes: Sequence[Hole]) -> None:
        """A batch's events (`event.message` has topic, partition, offset) and holes."""
        items: list[tuple[Place, int, Any, bool]] = [
            ((tp.topic, tp.partition), last, (tp, first, last), True) for tp, first, last in holes
        ]
        for event in events:
            msg = event.message
            items.append(((msg.topic, msg.partition), msg.offset, event, False))
        items.sort(key=lambda item: item[1])  # a hole comes before the event that revealed it
        for place, offset, item, is_hole in items:
            self._held.setdefault(place, deque()).append((offset, item, is_hole))
        self._count += len(items)

    def release(self, floors: dict[Place, int] | None = None) -> tuple[list[Any], list[Hole]]:
        """The events and holes below their partition's floor (all of them without floors),
        in order. An item behind a held one stays held (a re-read may be out of order)."""
        events: list[Any] = []
        holes: list[Hole] = []
        for place, queue in list(self._held.items()):
            floor = None if floors is None else floors.get(place)
            while queue and (floor is None or queue[0][0] < floor):
                _, item, is_hole = queue.popleft()
                (holes if is_hole else events).append(item)
            if not queue:
                del self._held[place]
        self._count -= len(events) + len(holes)
        return events, holes


class StateSaveError(RuntimeError):
    """A state write failed or was not acknowledged in time: the worker must exit and replay."""


async def confirm(saves: Sequence[tuple[str, int, Awaitable[Any]]], deadline: float) -> None:
    """Await every (source, size, write) within `deadline` seconds; else log each failure and
    raise `StateSaveError` naming the first."""
    if not saves:
        return
    futures = {asyncio.ensure_future(fut): (source, size) for source, size, fut in saves}
    done, pending = await asyncio.wait(futures, timeout=deadline)
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
        f"{deadline:g} s, the first of source {source} ({size} bytes): {why}"
    )


SEEN = re.compile(rb'"seen":(null|-?[0-9][0-9.eE+-]*)[,}]')
"""A saved state's last-seen time, read without parsing the rest (`saved_seen`)."""


def saved_seen(blob: bytes) -> float | None:
    """A stored state's last-seen time, None if it has none (older layouts, unreadable).

    The first sweep after a start reads it for every source of the table, under the lock:
    parsing whole states (~52 KB each) took seconds for many sources. A current-layout state
    has it at the top level before any detector's state, so the first match is it; others are
    parsed whole.

    >>> saved_seen(b'{"v":2,"signals":["seen"],"applied":{},"seen":1800000000.5,"x":1}')
    1800000000.5
    """
    if blob.startswith(b'{"v":%d,' % STATE_VERSION):
        found = SEEN.search(blob)
        if found is not None:
            text = found.group(1)
            try:
                return None if text == b"null" else float(text)
            except ValueError:
                return None
    try:
        seen = orjson.loads(blob)["seen"]
        return None if seen is None else float(seen)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # unreadable or older than `seen`: counted from now
