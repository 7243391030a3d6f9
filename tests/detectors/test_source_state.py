"""A source's bookkeeping: applied offsets per input topic, replays, and unique ids."""

from __future__ import annotations

from hashlib import blake2b

import numpy as np
import orjson

from detectors.alerting import episode_id
from detectors.engine import Scorer, ScoringConfig
from detectors.messages import anomaly_event, event_id
from detectors.records import Origin, Record
from detectors.results import Scored
from detectors.source_state import SourceState


def stream(topic: str, n: int, t0: float = 1000.0, first: int = 0) -> list[Record]:
    rng = np.random.default_rng(int(t0))
    return [
        Record("s", t0 + i, f"t{t0 + i}", {"x": float(rng.normal())}, Origin(topic, 0, first + i))
        for i in range(n)
    ]


def scored(results: list[Scored | None]) -> int:
    return sum(r is not None for r in results)


def test_a_renamed_input_topic_is_scored_not_dropped_as_replayed() -> None:
    scorer = Scorer(ScoringConfig(warmup=20))
    states: dict[str, SourceState] = {}
    scorer.score_batch(stream("signals", 100), states)
    assert scored(scorer.score_batch(stream("signals-v2", 50, t0=2000.0), states)) == 50
    assert scored(scorer.score_batch(stream("signals", 100), states)) == 0  # still replays


def test_a_recreated_input_topic_is_scored_and_counted_while_replays_stay_skipped() -> None:
    scorer = Scorer(ScoringConfig(warmup=20))
    states: dict[str, SourceState] = {}
    scorer.score_batch(stream("signals", 100), states)
    # the topic deleted and created again: its offsets start at 0 again, with newer records
    newer = stream("signals", 50, t0=5000.0)
    outcome = scorer.score(newer, states)
    assert scored(outcome.results) == 50 and outcome.resets == {("signals", 0): 50}
    # a crash replay of what was just applied is still a replay, through JSON too
    restored = {
        k: SourceState.from_json(orjson.loads(orjson.dumps(v.to_json(scorer.suite))), scorer.suite)
        for k, v in states.items()
    }
    again = scorer.score(newer, restored)
    assert scored(again.results) == 0 and not again.resets


def test_applied_offsets_of_a_version_1_state_are_taken_over_by_the_first_topic_seen() -> None:
    scorer = Scorer(ScoringConfig(warmup=20))
    states: dict[str, SourceState] = {}
    records = stream("signals", 100)
    scorer.score_batch(records, states)
    data = orjson.loads(orjson.dumps(states["s"].to_json(scorer.suite)))
    data["v"], data["applied"] = 1, {"0": 99}
    data.pop("seen")
    old = {"s": SourceState.from_json(data, scorer.suite)}
    assert scored(scorer.score_batch(records[50:], old)) == 0
    assert old["s"].to_json(scorer.suite)["applied"] == {"signals": {"0": 99}}


def spike_twice_at_one_time(topic_origin: bool) -> list[Scored]:
    """A spike, normal records that close its episode, then a spike at the first one's time."""
    rng = np.random.default_rng(3)
    times = [*range(200), 200, *range(201, 206), 200]
    values = [float(v) for v in rng.normal(size=206)] + [60.0]
    values[200] = 50.0
    records = [
        Record(
            "s", 1000.0 + t, f"t{t}", {"x": v}, Origin("signals", 0, i) if topic_origin else None
        )
        for i, (t, v) in enumerate(zip(times, values, strict=True))
    ]
    out = Scorer(ScoringConfig(warmup=50)).score_batch(records, {})
    return [r for r in out[200:] if r is not None]


def test_two_records_of_a_source_at_the_same_time_get_their_own_event_and_episode_ids() -> None:
    *run, second = spike_twice_at_one_time(topic_origin=True)
    first, normal = run[0], run[-1]
    assert first.is_anomaly and second.is_anomaly and not normal.is_anomaly
    cfg = ScoringConfig(warmup=50)
    a, b = anomaly_event(first, cfg), anomaly_event(second, cfg)
    assert a["id"] != b["id"]
    assert a["episode"]["id"] != b["episode"]["id"]
    # deterministic: the same records scored again (a replay) give the same ids
    again = spike_twice_at_one_time(topic_origin=True)
    assert [anomaly_event(r, cfg)["id"] for r in (again[0], again[-1])] == [a["id"], b["id"]]
    assert again[-1].episode == second.episode


def test_records_without_an_origin_keep_their_ids() -> None:
    first = spike_twice_at_one_time(topic_origin=False)[0]
    ts = first.record.ts_text
    old_event = blake2b(f"s|{ts}|score".encode(), digest_size=16).hexdigest()
    assert anomaly_event(first, ScoringConfig())["id"] == old_event == event_id("s", ts, "score")
    old_episode = blake2b(f"s|{ts}".encode(), digest_size=10).hexdigest()
    assert first.episode is not None and first.episode["id"] == old_episode == episode_id("s", ts)
