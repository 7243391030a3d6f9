"""The processor's ordering and bookkeeping, with in-memory stand-ins for Kafka (unit tier)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pytest

from detectors.engine import Scorer, ScoringConfig
from streams.codec import Limits
from streams.metrics import Metrics
from streams.processor import Processor
from streams.state import SourceStates
from streams.structs import InMessage
from streams.topics import TopicPlan
from tests.schemas import check

TOPICS = TopicPlan("signals", "scores", "anomalies", "signals.dlq", "cl", 4, 1)


class Log:
    def __init__(self) -> None:
        self.ops: list[tuple[str, Any]] = []


class FakeSink:
    def __init__(self, log: Log) -> None:
        self.log = log
        self.sent: list[tuple[str, bytes | None, bytes, Any]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes, headers: Any) -> Any:
        self.sent.append((topic, key, value, headers))
        fut = asyncio.get_running_loop().create_future()

        def acknowledge() -> None:
            self.log.ops.append(("ack", topic))
            fut.set_result(None)

        asyncio.get_running_loop().call_soon(acknowledge)
        return fut

    async def send_many(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> list[Any]:
        return [await self.send(topic, key, value, None) for key, value in messages]


class FakeStore:
    def __init__(self, log: Log) -> None:
        self.log = log
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def put(self, key: bytes, value: bytes, partition: int) -> Any:
        self.log.ops.append(("save", key))
        self.data[key] = value
        return self._done()

    def keys(self) -> list[bytes]:
        return list(self.data)

    def delete(self, key: bytes) -> Any:
        self.log.ops.append(("delete", key))
        del self.data[key]
        return self._done()

    @staticmethod
    def _done() -> Any:
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


def messages(n: int, start: int = 0) -> list[InMessage]:
    out = []
    for i in range(start, start + n):
        rec = {
            "source": f"s{i % 3}",
            "ts": 1795514400 + i,
            "signals": {"a": float(i % 5), "b": 1.0},
        }
        key = str(rec["source"]).encode()
        out.append(InMessage("signals", i % 2, i, key, orjson.dumps(rec)))
    return out


def make() -> tuple[Processor, FakeSink, FakeStore, Log]:
    log = Log()
    sink, store = FakeSink(log), FakeStore(log)
    scorer, metrics = Scorer(ScoringConfig(warmup=20)), Metrics()
    states = SourceStates(scorer, store, metrics)
    proc = Processor(scorer, states, sink, TOPICS, Limits(), metrics)
    return proc, sink, store, log


def process(proc: Processor, batch: list[InMessage]) -> Any:
    """Publish a batch, then save the state it changed (as the agent does at a checkpoint)."""

    async def both() -> Any:
        report = await proc.process(batch)
        await proc.states.flush()
        return report

    return asyncio.run(both())


def test_state_is_saved_only_after_every_output_is_acknowledged() -> None:
    proc, sink, _, log = make()
    process(proc, messages(30))
    kinds = [op for op, _ in log.ops]
    assert kinds.count("ack") == len(sink.sent) == 30
    assert kinds.index("save") > max(i for i, k in enumerate(kinds) if k == "ack")


def test_one_score_per_record_and_dead_letters_with_headers() -> None:
    proc, sink, _, _ = make()
    batch = messages(10)
    batch.insert(4, InMessage("signals", 1, 99, b"k", b"{oops"))
    report = process(proc, batch)
    assert (report.scored, report.dead) == (10, 1)
    scores = [orjson.loads(v) for t, _, v, _ in sink.sent if t == "scores"]
    assert len(scores) == 10
    for s in scores:
        check("score", s)
    (dlq,) = [(k, v, dict(h)) for t, k, v, h in sink.sent if t == "signals.dlq"]
    assert dlq[0] == b"k" and dlq[1] == b"{oops"
    headers = {k: v.decode() for k, v in dlq[2].items()}
    check("dead_letter", headers)
    assert headers["error"].startswith("invalid_json: ")
    assert (headers["source_partition"], headers["source_offset"]) == ("1", "99")


def test_a_replayed_batch_emits_nothing_and_a_restart_resumes_from_the_store() -> None:
    proc, sink, store, _ = make()
    process(proc, messages(40))
    first = len(sink.sent)
    report = process(proc, messages(40))  # the same offsets again
    assert report.replayed == 40 and len(sink.sent) == first
    # A new processor (a restarted worker) over the same store continues the same scores.
    fresh, fresh_sink, fresh_store, _ = make()
    fresh_store.data = dict(store.data)
    process(fresh, messages(10, start=40))
    process(proc, messages(10, start=40))
    assert len(fresh_sink.sent) == 10
    assert [v for _, _, v, _ in fresh_sink.sent] == [v for _, _, v, _ in sink.sent[first:]]


def test_unflushed_batches_build_on_each_other_and_are_saved_once() -> None:
    proc, sink, store, log = make()

    async def run() -> None:
        await proc.process(messages(30))
        await proc.process(messages(30, start=30))
        assert not store.data and proc.states.dirty == 3
        assert await proc.states.flush() == 3

    asyncio.run(run())
    assert [op for op, _ in log.ops].count("save") == 3
    whole, whole_sink, _, _ = make()
    process(whole, messages(60))
    assert [v for _, _, v, _ in sink.sent] == [v for _, _, v, _ in whole_sink.sent]


def test_one_record_from_the_far_future_does_not_freeze_its_source() -> None:
    proc, sink, _, _ = make()
    batch = messages(30)
    future = {"source": "s0", "ts": "2099-06-01T00:00:00Z", "signals": {"a": 1.0, "b": 1.0}}
    batch.insert(3, InMessage("signals", 0, 500, b"s0", orjson.dumps(future)))
    report = process(proc, batch)
    assert report.dead == 1 and report.scored == 30
    (dlq,) = [dict(h) for t, _, _, h in sink.sent if t == "signals.dlq"]
    assert dlq["error"].startswith(b"ts_in_future: ")
    scores = [orjson.loads(v) for t, _, v, _ in sink.sent if t == "scores"]
    assert not [s for s in scores if s.get("late")]  # later records of s0 are still learnt


def test_a_record_past_its_sources_signal_cap_goes_to_the_dead_letters_with_a_metric() -> None:
    proc, sink, store, _ = make()
    proc.states.max_source_signals = 4
    batch = []
    for i, names in enumerate([["a", "b", "c"], ["a", "d"], ["e", "f"], ["a", "b"], ["g"]]):
        rec = {"source": "w", "ts": 1795514400 + i, "signals": dict.fromkeys(names, 1.0)}
        batch.append(InMessage("signals", 0, i, b"w", orjson.dumps(rec)))
    report = process(proc, batch)
    assert (report.scored, report.dead, report.replayed) == (3, 2, 0)
    letters = [dict(h) for t, _, _, h in sink.sent if t == "signals.dlq"]
    assert [h["source_offset"] for h in letters] == [b"2", b"4"]
    assert all(h["error"].startswith(b"too_many_signals: ") for h in letters)
    assert proc.metrics.dead_letters.labels(reason="too_many_signals")._value.get() == 2
    assert orjson.loads(store.data[b"w"])["signals"] == ["a", "b", "c", "d"]


def array_batch(n: int) -> list[InMessage]:
    """One array message of `n` records of one source (every 7th one late), then two more."""
    items = [
        {"source": "big", "ts": 1795514400 + i - (5 if i % 7 == 3 else 0), "signals": {"a": i % 5}}
        for i in range(n)
    ]
    batch = [InMessage("signals", 0, 7, b"big", orjson.dumps(items))]
    batch += messages(2, start=8)
    return batch


@pytest.mark.parametrize(
    ("size", "cap", "chunks_of"),
    [(35, 10, [10, 10, 10, 7]), (18_000, None, [5000, 5000, 5000, 3002])],  # None: the default
)
def test_a_large_array_message_is_scored_in_chunks_with_the_loop_running_between(
    size: int, cap: int | None, chunks_of: list[int]
) -> None:
    proc, sink, store, _ = make()
    if cap is not None:
        proc.max_batch_records = cap
    chunks: list[tuple[int, int]] = []
    ticks = 0
    score = proc.states.score

    def spy(records: Any, states: Any) -> Any:
        chunks.append((len(records), ticks))
        return score(records, states)

    proc.states.score = spy  # type: ignore[method-assign]

    async def run() -> Any:
        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        report = await proc.process(array_batch(size))
        await proc.states.flush()
        ticker.cancel()
        return report

    report = asyncio.run(run())
    assert [n for n, _ in chunks] == chunks_of
    assert all(b > a for (_, a), (_, b) in itertools.pairwise(chunks))  # the loop ran between
    assert (report.scored, report.replayed, report.dead) == (size + 2, 0, 0)
    assert proc.metrics.offset_resets._value.get() == 0  # the rest of the array is no reset
    # The same outputs and saved states as the batch scored at once.
    whole, whole_sink, whole_store, _ = make()
    whole.max_batch_records = size + 2
    process(whole, array_batch(size))
    assert [v for _, _, v, _ in sink.sent] == [v for _, _, v, _ in whole_sink.sent]
    assert saved(store) == saved(whole_store)


def saved(store: FakeStore) -> dict[bytes, Any]:
    """The stored states, without the wall-clock time each was last seen."""
    return {k: {**orjson.loads(v), "seen": None} for k, v in store.data.items()}


def test_the_record_cap_per_micro_batch_is_a_setting_with_the_processors_default() -> None:
    from streams.processor import MAX_BATCH_RECORDS  # here: the rest runs on older code
    from streams.settings import load_settings

    assert (
        load_settings().kafka.max_batch_records == MAX_BATCH_RECORDS == make()[0].max_batch_records
    )


def test_the_future_bound_is_judged_by_the_message_time_so_a_replay_judges_alike() -> None:
    appended = 1_795_514_400.0
    ahead = {"source": "s0", "ts": appended + 2 * 86400, "signals": {"a": 1.0, "b": 1.0}}
    message = InMessage("signals", 0, 7, b"s0", orjson.dumps(ahead), appended)
    for wall in (appended, appended + 3 * 86400):  # first seen, then replayed days later
        proc, _, _, _ = make()
        proc.wall = functools.partial(float, wall)
        assert process(proc, [message]).dead == 1


def pump(n: int, spikes: dict[int, float], start: int = 0) -> list[InMessage]:
    """One source, `pump-1`, on partition 0 at offsets `start`..: `x` spiked at `spikes`."""
    rng = np.random.default_rng(1)
    values = rng.normal(size=start + n)
    out = []
    for i in range(start, start + n):
        rec = {
            "source": "pump-1",
            "ts": 1795514400 + i,
            "signals": {"x": spikes.get(i, float(values[i]))},
        }
        out.append(InMessage("signals", 0, i, b"pump-1", orjson.dumps(rec)))
    return out


def with_episodes() -> tuple[Processor, FakeSink, FakeStore, Log]:
    log = Log()
    sink, store = FakeSink(log), FakeStore(log)
    scorer, metrics = Scorer(ScoringConfig(warmup=20, learn_gate=True)), Metrics()
    topics = dataclasses.replace(TOPICS, episodes="episodes")
    proc = Processor(scorer, SourceStates(scorer, store, metrics), sink, topics, Limits(), metrics)
    return proc, sink, store, log


def test_episode_messages_go_to_their_topic_by_source_before_the_state_is_saved() -> None:
    proc, sink, _, log = with_episodes()
    process(proc, pump(100, {60: 40.0, 61: 50.0}))
    told = [(k, orjson.loads(v)) for t, k, v, _ in sink.sent if t == "episodes"]
    assert [(k, m["status"], m["ts"]) for k, m in told] == [
        (b"pump-1", "open", "2026-11-24T10:01:00.000Z"),
        (b"pump-1", "close", "2026-11-24T10:01:05.000Z"),  # past the gap of 3
    ]
    for _, msg in told:
        check("episode", msg)
    events = [orjson.loads(v) for t, _, v, _ in sink.sent if t == "anomalies"]
    assert {e["episode"]["id"] for e in events} == {told[0][1]["id"]}
    kinds = [op for op, _ in log.ops]
    assert kinds.count("ack") == len(sink.sent)
    assert kinds.index("save") > max(i for i, k in enumerate(kinds) if k == "ack")
    metrics = proc.metrics
    assert metrics.episodes.labels(severity="critical")._value.get() == 1
    assert metrics.open_episodes._value.get() == 0


def test_an_episode_open_at_a_batch_end_is_counted_and_goes_on_in_the_next() -> None:
    proc, sink, _, _ = with_episodes()
    process(proc, pump(62, {60: 40.0, 61: 50.0}))
    assert proc.metrics.open_episodes._value.get() == 1
    process(proc, pump(10, {}, start=62))
    assert proc.metrics.open_episodes._value.get() == 0
    statuses = [orjson.loads(v)["status"] for t, _, v, _ in sink.sent if t == "episodes"]
    assert statuses == ["open", "close"]
    proc.metrics.forget_sources(["pump-1"])  # evicted or moved away: not open here
    assert proc.metrics.open_episodes._value.get() == 0


def test_a_plan_without_an_episode_topic_sends_no_episode_messages() -> None:
    proc, sink, _, _ = make()
    process(proc, pump(100, {60: 40.0}))
    assert {t for t, _, _, _ in sink.sent} <= {"scores", "anomalies"}
