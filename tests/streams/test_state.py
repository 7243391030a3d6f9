"""The state owner: eviction, and checkpoints that ack input only behind saved state (unit tier)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from tests.streams.test_processor import Log, make, messages, process


class RecordingAcker:
    def __init__(self, log: Log) -> None:
        self.log = log
        self.holes: list[Any] = []

    async def ack(self, events: Sequence[Any], holes: Sequence[Any]) -> None:
        self.log.ops.extend(("input-ack", e) for e in events)
        self.holes.extend(holes)


def test_input_is_acked_only_after_the_save_that_covers_it_once_per_interval() -> None:
    proc, _, _, log = make()
    states = proc.states
    clock = [0.0]
    states.clock = lambda: clock[0]
    states.flush_interval, states._saved = 1.0, 0.0
    acker = states.acker = RecordingAcker(log)

    async def run() -> None:
        async with states.lock:
            await proc.process(messages(6))
            await states.done(["e1"], [("tp", 5, 7)])
        assert not [op for op, _ in log.ops if op in ("save", "input-ack")]  # interval not over
        clock[0] = 1.5
        async with states.lock:
            await proc.process(messages(6, start=6))
            await states.done(["e2"], [])

    asyncio.run(run())
    ops = [op for op, _ in log.ops]
    assert ops.count("save") == 3 and ops.count("input-ack") == 2
    assert max(i for i, op in enumerate(ops) if op == "save") < ops.index("input-ack")
    assert acker.holes == [("tp", 5, 7)]


def test_a_quiet_stream_is_saved_and_acked_by_the_timer() -> None:
    proc, _, store, log = make()
    states = proc.states
    states.flush_interval = 3600.0
    states.acker = RecordingAcker(log)

    async def run() -> None:
        async with states.lock:
            await proc.process(messages(3))
            await states.done(["e1"], [])
        assert not store.data
        await states.tick()

    asyncio.run(run())
    assert len(store.data) == 3 and [e for op, e in log.ops if op == "input-ack"] == ["e1"]
    assert states.dirty == 0


def test_quiet_sources_are_evicted_after_the_ttl_and_warm_up_again() -> None:
    proc, _, store, log = make()
    clock = [1000.0]
    proc.states.clock = lambda: clock[0]

    async def run() -> None:
        await proc.process(messages(30))  # sources s0, s1, s2 at t = 1000
        await proc.states.flush()
        assert await proc.states.evict(ttl=60.0) == 0
        clock[0] = 1030.0
        await proc.process([m for m in messages(3, start=30) if m.key == b"s0"])
        await proc.states.flush()
        clock[0] = 1061.0
        assert await proc.states.evict(ttl=60.0) == 2  # s1, s2: no record for 61 s; s0 for 31 s
        assert sorted(store.data) == [b"s0"]
        assert proc.metrics.sources._value.get() == 1

    asyncio.run(run())
    assert [k for op, k in log.ops if op == "delete"] == [b"s1", b"s2"]
    report = process(proc, [m for m in messages(3, start=33) if m.key == b"s1"])
    assert report.scored == 1  # s1 is scored again, from a fresh state
