"""The state owner: eviction, and checkpoints that ack input only behind saved state (unit tier)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from detectors.records import Record
from streams.state import SourceStates
from streams.structs import DeadLetter, InMessage
from tests.streams.test_processor import FakeStore, Log, make, messages, process


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
    proc.states.clock = proc.states.wall = lambda: clock[0]

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


def _records(source: str, names: list[list[str]], start: int = 0) -> list[InMessage]:
    """One message per record of `source`, with the given signal names."""
    out = []
    for i, signals in enumerate(names, start):
        rec = {"source": source, "ts": 1795514400 + i, "signals": dict.fromkeys(signals, 1.0)}
        out.append(InMessage("signals", 0, i, source.encode(), orjson.dumps(rec)))
    return out


def refuse(proc: Any, batch: list[InMessage]) -> tuple[Any, list[DeadLetter]]:
    """Decode, load and score a batch as the processor does; the refused records' letters."""
    records, _ = proc._decode(batch)
    loaded, _ = proc.states.load(records)
    outcome = proc.states.score(records, loaded)
    return outcome, proc.states.refused(outcome, records, batch)


def test_a_record_that_would_take_its_source_past_the_signal_cap_is_refused() -> None:
    proc, _, _, _ = make()
    proc.states.max_source_signals = 4
    batch = _records("w", [["a", "b", "c"], ["a", "d"], ["e", "f"], ["a", "b"], ["g"]])
    outcome, letters = refuse(proc, batch)
    assert [r is not None for r in outcome.results] == [True, True, False, True, False]
    assert [letter.message.offset for letter in letters] == [2, 4]
    assert all(letter.error.reason == "too_many_signals" for letter in letters)
    detail = letters[0].error.detail
    assert "'w'" in detail and "4" in detail and "max_source_signals" in detail
    assert orjson.loads(letters[0].value)["signals"] == {"e": 1.0, "f": 1.0}  # the record itself
    assert letters[0].index is None
    assert proc.states.load(proc._decode(batch[:1])[0])[0]["w"].signals == ["a", "b", "c", "d"]
    # the element of an array message is refused alone, with its index
    many = {"source": "w", "ts": 1795514500, "signals": {"h": 1.0}}
    ok = {"source": "w", "ts": 1795514501, "signals": {"a": 2.0}}
    outcome, letters = refuse(proc, [InMessage("signals", 0, 9, b"w", orjson.dumps([ok, many]))])
    assert outcome.results[0] is not None and outcome.results[1] is None
    (letter,) = letters
    assert orjson.loads(letter.value) == many and letter.index == 1


def test_the_default_signal_cap_keeps_the_largest_state_well_under_a_changelog_message() -> None:
    from detectors.source_state import MAX_SOURCE_SIGNALS
    from streams.scoring import build_scorer
    from streams.settings import load_settings

    settings = load_settings(environ={})
    assert settings.state.max_source_signals == MAX_SOURCE_SIGNALS
    scorer = build_scorer(settings)
    names = [f"signal-{k:03d}" for k in range(MAX_SOURCE_SIGNALS)]
    states: dict[str, Any] = {}
    records = [
        Record("big", 1795514400.0 + 60 * i, "t", {n: float(i % 7) for n in names})
        for i in range(50)
    ]
    scorer.score_batch(records, states)
    size = len(orjson.dumps(states["big"].to_json(scorer.suite)))
    assert size < 0.75 * 1_048_576  # headroom for a model's window and the episode


class StuckStore(FakeStore):
    """A changelog whose writes never complete, or fail."""

    def __init__(self, log: Log, fail: bool = False) -> None:
        super().__init__(log)
        self.fail = fail

    def put(self, key: bytes, value: bytes, partition: int) -> Any:
        self.data[key] = value
        fut = asyncio.get_running_loop().create_future()
        if self.fail:
            fut.set_exception(RuntimeError("MessageSizeTooLargeError"))
        return fut


def test_a_state_save_that_hangs_or_fails_raises_naming_the_source(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from streams.state import StateSaveError

    for fail in (False, True):
        proc, _, _, log = make()
        states = proc.states = SourceStates(proc.scorer, StuckStore(log, fail), proc.metrics)
        states.save_deadline = 0.05

        async def run(proc: Any = proc, states: SourceStates = states) -> None:
            await proc.process(_records("stuck", [["a"]]))
            await asyncio.wait_for(states.flush(), 5.0)  # the old code waited forever

        with caplog.at_level(logging.CRITICAL), pytest.raises(StateSaveError, match="stuck"):
            asyncio.run(run())
        assert "stuck" in caplog.text and "bytes" in caplog.text
        caplog.clear()


def test_unreadable_states_start_cold_and_are_counted_instead_of_crash_looping(
    caplog: pytest.LogCaptureFixture,
) -> None:
    proc, _, store, _ = make()
    process(proc, messages(30))
    good = orjson.loads(store.data[b"s2"])
    wrong_shape = {**good, "detectors": [1, 2]}  # not what this suite saves
    store.data = {
        b"s0": b"{not json",
        b"s1": orjson.dumps({**good, "v": 99}),  # a newer worker's layout
        b"s2": orjson.dumps(wrong_shape),
    }
    fresh, _, _, _ = make()
    fresh.states.store = store
    with caplog.at_level(logging.WARNING, logger="streams.state"):
        report = process(fresh, messages(30))  # the same offsets: a cold state replays nothing
    assert report.scored == 30 and report.replayed == 0
    unreadable = fresh.metrics.state_unreadable
    assert sum(unreadable.labels(reason=r)._value.get() for r in UNREADABLE) == 3
    for source in ("s0", "s1", "s2"):
        assert f"source {source}" in caplog.text
    assert sorted(store.data) == [b"s0", b"s1", b"s2"]  # rewritten, readable now
    for blob in store.data.values():
        assert orjson.loads(blob)["records"] == 10


UNREADABLE = ("invalid_json", "unknown_version", "wrong_shape")


def test_a_version_1_state_is_migrated_and_still_skips_what_it_applied() -> None:
    proc, _, store, _ = make()
    process(proc, messages(30))
    for key, blob in store.data.items():  # the layout of STATE_VERSION 1
        data = orjson.loads(blob)
        applied = {p: o for per_topic in data["applied"].values() for p, o in per_topic.items()}
        v1 = {k: v for k, v in data.items() if k not in ("seen",)}
        store.data[key] = orjson.dumps({**v1, "v": 1, "applied": applied})
    fresh, _, _, _ = make()
    fresh.states.store = store
    assert process(fresh, messages(30)).replayed == 30
    assert fresh.metrics.state_unreadable.labels(reason="unknown_version")._value.get() == 0
    assert process(fresh, messages(6, start=30)).scored == 6
    saved = orjson.loads(store.data[b"s0"])
    assert saved["v"] == 2 and set(saved["applied"]) == {"signals"}


def test_ttl_counts_from_the_last_record_seen_before_a_restart() -> None:
    proc, _, store, _ = make()
    wall = [1_800_000_000.0]
    proc.states.clock = proc.states.wall = lambda: wall[0]
    process(proc, messages(30))
    # a restart 50 s later: the new process's clocks start now
    wall[0] += 50.0
    fresh, _, _, _ = make()
    fresh.states.store = store
    fresh.states.clock = fresh.states.wall = lambda: wall[0]

    async def evict() -> int:
        return await fresh.states.evict(ttl=60.0)

    assert asyncio.run(evict()) == 0
    wall[0] += 11.0  # 61 s after the last record, 11 s after the restart
    assert asyncio.run(evict()) == 3 and not store.data


def test_no_source_is_evicted_while_a_rebalance_restores_the_table() -> None:
    # Restoring applies a source's changelog versions oldest first: a sweep in between would
    # read an old last-seen time and tombstone a source that is in fact active.
    proc, _, store, _ = make()
    states = proc.states
    wall = [1000.0]
    states.wall = lambda: wall[0]
    states.source_ttl = 60.0

    async def run() -> None:
        await proc.process(messages(30))
        await states.flush()
        wall[0] = 2000.0
        states._swept = -1e9
        states.restoring = True
        await states.tick()
        assert len(store.data) == 3  # nothing evicted while restoring
        states.restoring = False
        states._swept = -1e9
        await states.tick()
        assert not store.data

    asyncio.run(run())
