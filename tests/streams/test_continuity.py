from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, NamedTuple

from streams.continuity import GapGuard
from streams.structs import InMessage


class TopicPartition(NamedTuple):
    topic: str
    partition: int


TP = TopicPartition("signals", 0)


class FakeBroker:
    """Offsets 0..99 stored, except 40..44 (transaction markers)."""

    def __init__(self, committed: int | None) -> None:
        self._committed = committed
        self.fetches: list[tuple[int, int]] = []

    async def committed(self, tp: Any) -> int | None:
        return self._committed

    async def fetch(self, tp: Any, start: int, stop: int) -> list[InMessage]:
        self.fetches.append((start, stop))
        return [
            InMessage("signals", 0, o, b"k", b"v%d" % o)
            for o in range(start, stop)
            if not 40 <= o < 45
        ]


def events(*offsets: int) -> list[Any]:
    return [
        SimpleNamespace(
            message=SimpleNamespace(tp=TP, topic="signals", partition=0, offset=o, timestamp=None),
            key=b"k",
            value=b"v%d" % o,
        )
        for o in offsets
    ]


def admit(guard: GapGuard, *offsets: int):
    return asyncio.run(guard.admit(events(*offsets)))


def test_contiguous_events_pass_untouched() -> None:
    broker = FakeBroker(committed=10)
    out = admit(GapGuard(broker), 10, 11, 12)
    assert [m.offset for m in out.messages] == [10, 11, 12]
    assert not out.holes and not broker.fetches


def test_records_faust_lost_are_read_from_the_broker_and_scored_first() -> None:
    broker = FakeBroker(committed=10)
    guard = GapGuard(broker)
    out = admit(guard, 10, 11, 20, 21)
    assert [m.offset for m in out.messages] == [10, 11, *range(12, 20), 20, 21]
    assert out.holes == [(TP, 12, 19)]
    assert len(out.events) == 4  # only Faust's own events are acked
    assert guard.refilled == 8


def test_a_hole_at_the_committed_offset_is_filled_too() -> None:
    out = admit(GapGuard(FakeBroker(committed=5)), 7, 8)
    assert [m.offset for m in out.messages] == [5, 6, 7, 8]


def test_a_real_hole_is_accepted_without_records() -> None:
    out = admit(GapGuard(FakeBroker(committed=38)), 38, 39, 45)
    assert [m.offset for m in out.messages] == [38, 39, 45]
    assert out.holes == [(TP, 40, 44)]


def test_re_reads_pass_and_forget_resets_the_partition() -> None:
    broker = FakeBroker(committed=0)
    guard = GapGuard(broker)
    admit(guard, 0, 1, 2)
    assert [m.offset for m in admit(guard, 1, 2, 3).messages] == [1, 2, 3]
    guard.forget([TP])
    broker._committed = 50
    assert [m.offset for m in admit(guard, 50).messages] == [50]
    assert not broker.fetches
