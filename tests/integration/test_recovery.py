"""State restored exactly across a clean stop and a crash, proven on Apache Kafka.

A worker scores 20,000 records from 100 sources; it is stopped with SIGTERM after the first
12,000, restarted, killed with SIGKILL in the middle of the next 4,000, restarted again, and
fed 4,000 more. Every record must have a score, duplicates (the crash replays at most about one
state save interval plus a checkpoint and a commit interval) must be identical, and every score
must equal the score of an uninterrupted run over the same input (the offline scorer: same code,
no batching effects) within 1e-9.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import orjson
import pytest

from detectors.engine import Scorer, ScoringConfig
from detectors.records import Record
from detectors.timestamps import parse_ts
from tests.integration.conftest import dumps, input_of

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

SOURCES = 100
PHASES = (12_000, 4_000, 4_000)
SETTLE_AFTER_RESTARTS = 15.0
"""Seconds without a new score before a read gives up, after workers were killed: a killed
worker was a static group member, and a restarted one under a new id waits for it to time out
(the lane's 10 s session timeout) before the group hands its partitions over."""

TANSU_DEFECT = (
    "Tansu 0.6 answers ListOffsets(latest) with the base offset of the partition's last record "
    "batch + 1, so Faust stops restoring the changelog early and loses the last batch of state"
)


def workload(total: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(5)
    out = []
    for i in range(total):
        source = f"src-{i % SOURCES:03d}"
        k = i // SOURCES
        out.append(
            {
                "source": source,
                "ts": 1795514400 + k,
                "signals": {
                    "a": float(rng.normal(10, 1)),
                    "b": float(rng.normal(0, 3) + np.sin(k / 9)),
                    "c": float(rng.integers(0, 4)),
                },
            }
        )
    return out


def _ts_text(ts: float) -> str:
    return parse_ts(ts)[0:2][1]


def reference(records: list[dict[str, Any]], warmup: int) -> dict[tuple[str, str], float]:
    scorer = Scorer(ScoringConfig(warmup=warmup))
    states: dict[str, Any] = {}
    recs = []
    for r in records:
        ts, text = parse_ts(r["ts"])
        recs.append(Record(r["source"], ts, text, r["signals"]))
    out = {}
    for a in range(0, len(recs), 997):
        for res in scorer.score_batch(recs[a : a + 997], states):
            assert res is not None
            out[(res.record.source, res.record.ts_text)] = res.score
    return out


def test_state_survives_sigterm_and_sigkill_exactly(lane, broker_kind, request) -> None:
    ready = 120.0
    if broker_kind == "tansu":
        request.applymarker(pytest.mark.xfail(reason=TANSU_DEFECT, strict=False))
        ready = 45.0  # a restarted worker can hang in recovery there; do not wait for long
    flush, commit = 0.5, 0.5
    run = lane(warmup=100, broker_commit_interval=commit, state_flush_interval=flush)
    run.create_topics()
    s = run.settings
    records = workload(sum(PHASES))
    messages = [(r["source"].encode(), dumps(r)) for r in records]
    a, b, _ = PHASES
    timings: dict[str, float] = {}

    w1 = run.worker("w1")
    t = time.monotonic()
    run.produce(messages[:a])
    assert len(run.read(s.kafka.topic_scores, a, timeout=180, settle=0.5)) >= a
    rate = a / (time.monotonic() - t)  # records/s, an upper bound of what one stop can replay
    t = time.monotonic()
    assert w1.stop(timeout=30) is not None

    w2 = run.worker("w2", ready_timeout=ready)
    timings["restart after SIGTERM (s)"] = time.monotonic() - t
    run.produce(messages[a : a + b])
    run.read(s.kafka.topic_scores, a + b // 2, timeout=180, settle=0.0)
    w2.kill()
    t = time.monotonic()
    w3 = run.worker("w3", ready_timeout=ready)
    timings["restart after SIGKILL (s)"] = time.monotonic() - t
    run.produce(messages[a + b :])
    scores = run.read(
        s.kafka.topic_scores,
        len(records),
        timeout=240,
        settle=SETTLE_AFTER_RESTARTS,
        distinct=input_of,
    )
    w3.stop()

    expected = reference(records, warmup=100)
    seen: dict[tuple[str, str], float] = {}
    duplicates = 0
    replayed = {"SIGTERM": 0, "SIGKILL": 0}
    phase_of = {(r["source"], _ts_text(r["ts"])): i for i, r in enumerate(records)}
    worst = 0.0
    differing = []
    for m in scores:
        msg = orjson.loads(m.value)
        key = (msg["source"], msg["ts"])
        if key in seen:
            duplicates += 1
            replayed["SIGTERM" if phase_of[key] < a else "SIGKILL"] += 1
            if msg["score"] != seen[key]:
                differing.append((key, msg["input"], seen[key], msg["score"], expected[key]))
            continue
        seen[key] = msg["score"]
        worst = max(worst, abs(msg["score"] - expected[key]))
    assert not differing, f"{len(differing)} replayed records got other scores: {differing[:5]}"
    missing = set(expected) - set(seen)
    print(
        f"\nrecovery on {broker_kind}: {len(records)} records, {len(scores)} score messages, "
        f"{duplicates} duplicates {replayed}, max |score - uninterrupted| = {worst:.3g}, "
        f"{timings}, {rate:.0f} records/s"
    )
    assert not missing, f"{len(missing)} records never scored"
    # A stop replays what was scored but not yet saved and committed: at most one save interval
    # (a source's oldest unsaved record), one checkpoint and one commit interval of records,
    # plus the batch in flight.
    bound = rate * (s.state.state_save_interval + flush + commit) + 2_000
    for stop, n in replayed.items():
        assert n <= bound, f"{n} records replayed after {stop}, more than {bound:.0f}"
    assert worst <= 1e-9
