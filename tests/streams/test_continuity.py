from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, NamedTuple

import pytest

from streams.continuity import GapGuard, HoleNotReadable, KafkaOffsets, Refill
from streams.metrics import Metrics
from streams.structs import InMessage


class TopicPartition(NamedTuple):
    topic: str
    partition: int


TP = TopicPartition("signals", 0)


class FakeBroker:
    """Offsets `first`..99 stored, except 40..44 (transaction markers)."""

    def __init__(self, committed: int | None, first: int = 0) -> None:
        self._committed = committed
        self.first = first
        self.fetches: list[tuple[int, int]] = []

    async def committed(self, tp: Any) -> int | None:
        return self._committed

    async def fetch(self, tp: Any, start: int, stop: int) -> Refill:
        self.fetches.append((start, stop))
        found = [
            InMessage("signals", 0, o, b"k", b"v%d" % o)
            for o in range(max(start, self.first), stop)
            if not 40 <= o < 45
        ]
        return Refill(found, self.first)


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


def test_every_skipped_offset_is_counted_with_its_reason() -> None:
    metrics = Metrics()
    guard = GapGuard(FakeBroker(committed=30, first=35), metrics)
    out = admit(guard, 50)
    assert [m.offset for m in out.messages] == [*range(35, 40), *range(45, 50), 50]
    assert guard.skipped == {"gone": 5, "absent": 5}
    sample = metrics.registry.get_sample_value
    assert sample("anomstream_gap_offsets_skipped_total", {"reason": "gone"}) == 5
    assert sample("anomstream_gap_offsets_skipped_total", {"reason": "absent"}) == 5
    assert sample("anomstream_gap_records_refilled_total") == 10


class Rec(NamedTuple):
    offset: int
    key: bytes
    value: bytes
    timestamp: int | None


class SlowProbe:
    """A probe consumer over offsets `first`..`end`-1 whose first `empty` fetches time out."""

    def __init__(self, first: int, end: int, empty: int, gaps: frozenset[int] = frozenset()):
        self.first, self.end, self.empty, self.gaps = first, end, empty, gaps
        self.pos = 0

    def assign(self, tps: list[Any]) -> None:
        return None

    def seek(self, tp: Any, offset: int) -> None:
        self.pos = offset

    async def beginning_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: self.first for tp in tps}

    async def position(self, tp: Any) -> int:
        return self.pos

    async def getmany(self, tp: Any, timeout_ms: int) -> dict[Any, list[Rec]]:
        if self.empty:
            self.empty -= 1
            await asyncio.sleep(0.001)  # a real fetch waits before it answers empty
            return {}
        out = [Rec(o, b"k", b"v", None) for o in range(self.pos, self.end) if o not in self.gaps]
        chunk = out[:3]  # a few per fetch; compacted offsets are skipped by the position
        self.pos = chunk[-1].offset + 1 if chunk else self.end
        return {tp: chunk} if chunk else {}


def offsets_over(probe: SlowProbe, deadline: float = 5.0) -> KafkaOffsets:
    offsets = KafkaOffsets("unused:9092", "group", deadline=deadline)
    offsets._probe = probe
    return offsets


def test_one_empty_fetch_is_a_slow_broker_not_a_hole() -> None:
    refill = asyncio.run(offsets_over(SlowProbe(first=0, end=20, empty=2)).fetch(TP, 5, 10))
    assert [m.offset for m in refill.messages] == [5, 6, 7, 8, 9]
    assert refill.first == 0
    compacted = SlowProbe(first=0, end=11, empty=1, gaps=frozenset({6, 7, 9}))
    refill = asyncio.run(offsets_over(compacted).fetch(TP, 5, 10))
    assert [m.offset for m in refill.messages] == [5, 8]


def test_offsets_below_the_first_stored_one_are_gone_and_not_waited_for() -> None:
    refill = asyncio.run(offsets_over(SlowProbe(first=8, end=12, empty=0)).fetch(TP, 2, 10))
    assert [m.offset for m in refill.messages] == [8, 9]
    assert refill.first == 8
    refill = asyncio.run(offsets_over(SlowProbe(first=12, end=14, empty=5)).fetch(TP, 2, 10))
    assert refill == Refill([], 12)


def test_a_hole_the_broker_never_answers_for_stops_the_worker_instead_of_skipping() -> None:
    with pytest.raises(HoleNotReadable):
        asyncio.run(offsets_over(SlowProbe(0, 20, empty=10**6), deadline=0.5).fetch(TP, 5, 10))


def test_re_reads_below_the_committed_offset_ask_the_broker_once() -> None:
    class Counting(FakeBroker):
        asked = 0

        async def committed(self, tp: Any) -> int | None:
            self.asked += 1
            return await super().committed(tp)

    broker = Counting(committed=10)
    out = admit(GapGuard(broker), 6, 7, 8, 9, 10, 11)
    assert [m.offset for m in out.messages] == [6, 7, 8, 9, 10, 11] and not out.holes
    assert broker.asked == 1


def tails(guard: GapGuard, end: int):
    return asyncio.run(guard.tails({TP: end}))


def test_a_quiet_partition_whose_tail_never_arrived_is_read_from_the_broker() -> None:
    """Faust's getmany drops what it fetched when the generation changes under it, after the
    seek to the committed offsets: the consumer's position is then past records the agent never
    saw, and with no later record nothing reveals the hole."""
    broker = FakeBroker(committed=10)
    guard = GapGuard(broker)
    admit(guard, 10, 11)
    first = tails(guard, 30)  # the first look only notes where the partition stands
    assert (first.messages, first.holes, broker.fetches) == ([], [], [])
    out = tails(guard, 30)  # still no record after 12, and the broker holds up to 29
    assert [m.offset for m in out.messages] == list(range(12, 30))
    assert out.holes == [(TP, 12, 29)] and out.events == []
    assert guard.refilled == 18
    # once read, the partition expects 30: a late delivery of 12..29 is a re-read, no new hole
    again = admit(guard, 12, 13)
    assert again.holes == [] and [m.offset for m in again.messages] == [12, 13]
    assert tails(guard, 30).messages == [] and tails(guard, 30).messages == []


def test_a_partition_that_moves_or_has_nothing_more_is_left_alone() -> None:
    broker = FakeBroker(committed=10)
    guard = GapGuard(broker)
    admit(guard, 10, 11)
    tails(guard, 50)
    admit(guard, 12, 13)  # the agent is getting through a backlog: not quiet
    assert tails(guard, 50).messages == [] and broker.fetches == []
    caught_up = GapGuard(FakeBroker(committed=10))
    admit(caught_up, 10, 11)
    assert tails(caught_up, 12).messages == [] and tails(caught_up, 12).messages == []


def test_a_partition_never_delivered_since_its_assignment_starts_at_the_committed_offset() -> None:
    broker = FakeBroker(committed=20)
    guard = GapGuard(broker)
    tails(guard, 25)
    out = tails(guard, 25)
    assert [m.offset for m in out.messages] == [20, 21, 22, 23, 24]
    guard.forget([TP])  # revoked: the next owner's look starts afresh
    assert tails(guard, 25).messages == []


def test_a_broker_error_during_a_look_leaves_every_partition_as_it_was() -> None:
    class Flaky(FakeBroker):
        fail = False

        async def fetch(self, tp: Any, start: int, stop: int) -> Refill:
            if self.fail:
                raise HoleNotReadable("away")
            return await super().fetch(tp, start, stop)

    broker = Flaky(committed=10)
    guard = GapGuard(broker)
    admit(guard, 10, 11)
    tails(guard, 30)
    broker.fail = True
    with pytest.raises(HoleNotReadable):
        tails(guard, 30)
    broker.fail = False
    out = tails(guard, 30)  # the next look reads the very same records
    assert [m.offset for m in out.messages] == list(range(12, 30))
