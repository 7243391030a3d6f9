"""The state owner: eviction, and checkpoints that ack input only behind saved state (unit tier)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from detectors.records import Record
from streams.saves import SaveBook, saved_seen
from streams.state import SourceStates
from streams.structs import DeadLetter, InMessage
from tests.streams.test_processor import FakeStore, Log, make, messages, process
from tests.streams.test_saves import TP, Event, Message


class RecordingAcker:
    def __init__(self, log: Log) -> None:
        self.log = log
        self.holes: list[Any] = []

    async def ack(self, events: Sequence[Any], holes: Sequence[Any]) -> None:
        self.log.ops.extend(("input-ack", e) for e in events)
        self.holes.extend(holes)


def events_of(batch: Sequence[InMessage]) -> list[Event]:
    """The Faust events the agent would hold for these messages."""
    return [Event(Message(m.topic, m.partition, m.offset)) for m in batch]


def acked(log: Log) -> list[tuple[int, int]]:
    return [(e.message.partition, e.message.offset) for op, e in log.ops if op == "input-ack"]


def test_input_is_acked_only_after_the_save_that_covers_it_once_per_interval() -> None:
    proc, _, _, log = make()
    states = proc.states
    clock = [0.0]
    states.clock = lambda: clock[0]
    states.flush_interval, states._saved = 1.0, 0.0
    acker = states.acker = RecordingAcker(log)
    first, second = messages(6), messages(6, start=6)
    hole = (TP("signals", 1), 12, 13)

    async def run() -> None:
        async with states.lock:
            await proc.process(first)
            await states.done(events_of(first), [])
        assert not [op for op, _ in log.ops if op in ("save", "input-ack")]  # interval not over
        clock[0] = 1.5
        async with states.lock:
            await proc.process(second)
            await states.done(events_of(second), [hole])

    asyncio.run(run())
    ops = [op for op, _ in log.ops]
    assert ops.count("save") == 3 and ops.count("input-ack") == 12
    assert max(i for i, op in enumerate(ops) if op == "save") < ops.index("input-ack")
    assert acker.holes == [hole]


def test_a_quiet_stream_is_saved_and_acked_by_the_timer() -> None:
    proc, _, store, log = make()
    states = proc.states
    states.flush_interval = 3600.0
    states.acker = RecordingAcker(log)
    batch = messages(3)

    async def run() -> None:
        async with states.lock:
            await proc.process(batch)
            await states.done(events_of(batch), [])
        assert not store.data
        await states.tick()

    asyncio.run(run())
    assert len(store.data) == 3 and sorted(acked(log)) == [(0, 0), (0, 2), (1, 1)]
    assert states.dirty == 0


def one_partition(sources: str, start: int = 0) -> list[InMessage]:
    """One record per letter of `sources` (a source each), at consecutive offsets of p0."""
    out = []
    for i, name in enumerate(sources, start):
        rec = {"source": name, "ts": 1795514400 + i, "signals": {"a": float(i % 5), "b": 1.0}}
        out.append(InMessage("signals", 0, i, name.encode(), orjson.dumps(rec)))
    return out


def deferring(save_interval: float, save_records: int) -> tuple[Any, Any, list[float], Log]:
    """A processor whose states defer saves; checkpoints whenever asked; a settable clock."""
    proc, _, store, log = make()
    states = proc.states
    clock = [0.0]
    states.clock = lambda: clock[0]
    states.flush_interval, states._saved = 0.0, 0.0
    states.book = SaveBook(save_interval, save_records)
    states.acker = RecordingAcker(log)
    return proc, store, clock, log


async def batch_done(proc: Any, batch: list[InMessage]) -> None:
    async with proc.states.lock:
        await proc.process(batch)
        await proc.states.done(events_of(batch), [])


def test_a_deferred_save_holds_the_commit_at_its_sources_first_unsaved_record() -> None:
    # "q" is quiet (one record), "b" busy: b is saved after 3 records, q only after 10 s, and
    # until then nothing from q's record on may be acknowledged (so committed) to Faust.
    proc, store, clock, log = deferring(save_interval=10.0, save_records=3)

    async def run() -> None:
        await batch_done(proc, one_partition("bqbb"))  # offsets 0..3; q at 1
        assert sorted(store.data) == [b"b"] and acked(log) == [(0, 0)]
        clock[0] = 5.0
        await batch_done(proc, one_partition("bb", start=4))
        assert acked(log) == [(0, 0)] and proc.states.dirty == 2  # b: 2 unsaved records
        clock[0] = 10.0
        await batch_done(proc, one_partition("b", start=6))  # q due now, b full
        assert not proc.states.dirty
        assert acked(log) == [(0, o) for o in range(7)]

    asyncio.run(run())
    assert [k for op, k in log.ops if op == "save"] == [b"b", b"q", b"b"]


def test_a_crash_before_a_deferred_save_replays_identically_from_the_floor() -> None:
    # The worker dies with q unsaved: Faust committed offset 1 at most (q's record). A restart
    # replays offsets 1.. against the saved states: b's records are skipped (its state applied
    # them), q's is scored again with the very same message, and the rest goes on as in a run
    # without the crash.
    proc, store, _, log = make_deferred_run()
    batch = one_partition("bqbbcb")
    asyncio.run(batch_done(proc, batch))
    committed = min(o for p, o in acked_floor(log, batch))
    assert committed == 1
    first = {m.offset: v for m, v in outputs(proc)}

    fresh, fresh_sink, fresh_store, _ = make()
    fresh_store.data = dict(store.data)  # what the changelog holds
    report = process(fresh, batch[committed:])
    assert report.replayed == 3 and report.scored == 2  # b's three skipped; q, c rescored
    again = {
        orjson.loads(v)["input"]["offset"]: v for t, _, v, _ in fresh_sink.sent if t == "scores"
    }
    assert again == {o: first[o] for o in (1, 4)}  # identical bytes: same scores, same ids
    # and the restarted worker goes on as an uninterrupted one
    whole, whole_sink, _, _ = make()
    process(whole, batch)
    process(whole, one_partition("qcb", start=6))
    process(fresh, one_partition("qcb", start=6))
    assert [v for _, _, v, _ in fresh_sink.sent][-3:] == [v for _, _, v, _ in whole_sink.sent][-3:]


def make_deferred_run() -> tuple[Any, Any, list[float], Log]:
    return deferring(save_interval=60.0, save_records=3)


def acked_floor(log: Log, batch: list[InMessage]) -> list[tuple[int, int]]:
    """Per partition, the first offset not acknowledged (what Faust would commit)."""
    done = set(acked(log))
    return [(m.partition, m.offset) for m in batch if (m.partition, m.offset) not in done]


def outputs(proc: Any) -> list[tuple[Any, bytes]]:
    sink = proc.sink
    return [
        (Message("signals", 0, orjson.loads(v)["input"]["offset"]), v)
        for t, _, v, _ in sink.sent
        if t == "scores"
    ]


def test_a_forced_checkpoint_saves_everything_and_acks_all_input() -> None:
    # A rebalance or a stop: nothing scored may be left to a replay.
    proc, store, _, log = deferring(save_interval=3600.0, save_records=0)
    batch = one_partition("abcab")

    async def run() -> None:
        await batch_done(proc, batch)
        assert not store.data and not acked(log)
        async with proc.states.lock:
            await proc.states.checkpoint(everything=True)

    asyncio.run(run())
    assert sorted(store.data) == [b"a", b"b", b"c"] and acked(log) == [(0, o) for o in range(5)]
    assert proc.states.dirty == 0


def test_a_slow_source_is_saved_at_most_once_per_save_interval() -> None:
    # One record a second, a checkpoint after each: 30 saves before; with a 5 s interval the
    # state is saved at 5, 11, 17, 23 and 29 s (unsaved again from the next record on).
    for interval, saves in ((0.0, 30), (5.0, 5)):
        proc, _, clock, log = deferring(save_interval=interval, save_records=0)

        async def run(proc: Any = proc, clock: list[float] = clock) -> None:
            for i in range(30):
                clock[0] = float(i)
                await batch_done(proc, one_partition("s", start=i))

        asyncio.run(run())
        assert [op for op, _ in log.ops].count("save") == saves, interval


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
    rejected = [(records[i], error) for i, error in outcome.rejected]
    return outcome, proc.states.letters(rejected, batch)


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
    from streams.saves import StateSaveError

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


def test_records_of_new_sources_beyond_the_cap_go_to_the_dead_letters() -> None:
    proc, sink, store, _ = make()
    proc.states.max_sources = 2
    report = process(proc, one_partition("abcab"))  # c would be the third source
    assert (report.scored, report.dead) == (4, 1)
    (letter,) = [(v, dict(h)) for t, _, v, h in sink.sent if t == "signals.dlq"]
    assert letter[1]["error"].startswith(b"too_many_sources: ")
    assert b"'c'" in letter[1]["error"] and b"max_sources" in letter[1]["error"]
    assert orjson.loads(letter[0])["source"] == "c"
    assert sorted(store.data) == [b"a", b"b"]  # c got no state
    metrics = proc.metrics
    assert metrics.dead_letters.labels(reason="too_many_sources")._value.get() == 1
    assert metrics.sources._value.get() == 2
    # the sources held go on being scored; once one is forgotten, a new one gets its place
    assert process(proc, one_partition("ab", start=5)).scored == 2
    proc.states.forget(["a"])
    assert process(proc, one_partition("c", start=7)).scored == 1


def test_sources_restored_from_the_changelog_count_toward_the_cap() -> None:
    proc, _, store, _ = make()
    process(proc, one_partition("abc"))
    fresh, _, _, _ = make()
    fresh.states.store, fresh.states.max_sources = store, 3
    assert fresh.states.adopt() == 3  # after the restore: held, although not loaded yet
    assert fresh.metrics.sources._value.get() == 3
    report = process(fresh, one_partition("ad", start=3))
    assert (report.scored, report.dead) == (1, 1)  # a restored source is scored, d refused


def test_the_first_sweep_reads_last_seen_times_without_parsing_whole_states(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # After a start the sweep learns every restored source's last-seen time under the lock:
    # parsing each whole state (~52 KB) for it took seconds for many sources.
    proc, _, store, _ = make()
    wall = [1_800_000_000.0]
    proc.states.wall = lambda: wall[0]
    process(proc, one_partition("abc"))
    fresh, _, _, _ = make()
    fresh.states.store = store
    wall[0] += 61.0
    fresh.states.wall = lambda: wall[0]

    def whole_parse(blob: bytes) -> Any:
        raise AssertionError(f"parsed a whole state of {len(blob)} bytes")

    blobs = dict(store.data)
    monkeypatch.setattr("streams.state.orjson.loads", whole_parse)
    assert asyncio.run(fresh.states.evict(ttl=60.0)) == 3 and not store.data
    monkeypatch.undo()
    for blob in blobs.values():  # the shortcut reads what a whole parse reads
        assert saved_seen(blob) == orjson.loads(blob)["seen"] == wall[0] - 61.0


def test_the_state_settings_reach_the_worker_with_their_defaults() -> None:
    from streams.settings import MAX_SOURCES, load_settings

    state = load_settings(environ={}).state
    assert (state.state_save_interval, state.state_save_records) == (5.0, 1_000)
    assert state.max_sources == MAX_SOURCES
    env = {
        "ANOMSTREAM_STATE_SAVE_INTERVAL": "0",
        "ANOMSTREAM_STATE_SAVE_RECORDS": "10",
        "ANOMSTREAM_MAX_SOURCES": "7",
    }
    state = load_settings(environ=env).state
    assert (state.state_save_interval, state.state_save_records, state.max_sources) == (0, 10, 7)


def test_replayed_records_are_saved_at_the_first_checkpoint_after_a_restart() -> None:
    # Without it, workers that crash again within the save interval never commit anything.
    proc, store, _, log = deferring(save_interval=5.0, save_records=0)
    wall = 1_800_000_000.0
    proc.states.wall = lambda: wall
    replayed = [m._replace(timestamp=wall - 60.0) for m in one_partition("ab")]
    live = [m._replace(timestamp=wall - 1.0) for m in one_partition("c", start=2)]
    asyncio.run(batch_done(proc, replayed + live))
    assert sorted(store.data) == [b"a", b"b"] and acked(log) == [(0, 0), (0, 1)]
