"""Records in, scores and events out, dead letters aside: the whole path on a real broker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from typing import Any

import numpy as np
import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from tests.integration.conftest import dumps, record
from tests.schemas import check
from tests.streams.test_codec import BAD_MESSAGES

pytestmark = pytest.mark.integration

SOURCES = ["pump-1", "pump-2", "pump-3", "pump-4"]
SPIKE_AT = 1700  # index in the stream of records (after warm-up)


def workload(n: int = 2000) -> tuple[list[tuple[bytes | None, bytes]], list[dict[str, Any]]]:
    """n records from 4 sources, as single messages and as arrays of 5, with one spike."""
    rng = np.random.default_rng(11)
    records = []
    for i in range(n):
        source = SOURCES[i % 4]
        signals: dict[str, float | None] = {
            "temp": float(rng.normal(70, 1)),
            "pressure": float(rng.normal(3, 0.1)),
            "flow": float(rng.normal(50, 2)),
        }
        if i == SPIKE_AT:
            signals["pressure"] = 9.0
        records.append(record(source, i // 4, signals))
    messages: list[tuple[bytes | None, bytes]] = []
    per_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        per_source[rec["source"]].append(rec)
    # Interleave: each source alternates 15 single messages and one array of 5 records.
    for source, recs in per_source.items():
        k = 0
        while k < len(recs):
            if (k // 5) % 4 == 3:
                messages.append((source.encode(), dumps(recs[k : k + 5])))
                k += 5
            else:
                messages.append((source.encode(), dumps(recs[k])))
                k += 1
    return messages, records


MAX_MESSAGE_BYTES = 262_144  # below the 1 MiB a Kafka broker accepts by default
LIMIT_REASONS = {"too_many_signals", "too_large", "empty"}  # the unit corpus uses smaller limits


def bad_stream() -> list[tuple[bytes, str]]:
    """Every malformed kind, sized for the worker's default limits."""
    out = [(raw, reason) for raw, reason in BAD_MESSAGES if reason not in LIMIT_REASONS and raw]
    many = {f"s{i}": 1.0 for i in range(1001)}
    out.append((orjson.dumps({"source": "a", "ts": 1, "signals": many}), "too_many_signals"))
    out.append(
        (
            b'{"source": "a", "ts": 1, "signals": {"x": 1}, "pad": "' + b"x" * 300_000 + b'"}',
            "too_large",
        )
    )
    return out


@pytest.fixture(scope="module")
def bad_messages() -> list[tuple[bytes | None, bytes]]:
    return [(b"bad", raw) for raw, _ in bad_stream()]


def test_every_record_is_scored_once_in_order_and_the_spike_is_explained(lane) -> None:
    run = lane()
    run.create_topics()
    worker = run.worker()
    messages, records = workload()
    run.produce(messages)
    s = run.settings
    scores = run.read(s.kafka.topic_scores, len(records), timeout=120, settle=3.0)
    assert len(scores) == len(records)
    decoded = [orjson.loads(m.value) for m in scores]
    for msg in decoded:
        check("score", msg)
    # exactly one per record, and in order per source
    by_source: dict[str, list[str]] = defaultdict(list)
    for msg in decoded:
        by_source[msg["source"]].append(msg["ts"])
    for source in SOURCES:
        expected = [r for r in records if r["source"] == source]
        assert len(by_source[source]) == len(expected)
        assert by_source[source] == sorted(by_source[source])
    assert len(
        {
            (m["input"]["partition"], m["input"]["offset"], m["input"].get("index", 0))
            for m in decoded
        }
    ) == len(records)
    # score messages go out a batch per partition, placed by key as the default partitioner does
    place = DefaultPartitioner()
    all_partitions = list(range(s.kafka.partitions))
    for m in scores:
        assert m.key == orjson.loads(m.value)["source"].encode()
        assert m.partition == place(m.key, all_partitions, all_partitions)

    events = [orjson.loads(m.value) for m in run.read(s.kafka.topic_anomalies, 1, timeout=30)]
    for event in events:
        check("event", event)
    spiked = [
        e
        for e in events
        if e["source"] == records[SPIKE_AT]["source"]
        and e["signals"][0]["name"] == "pressure"
        and e["signals"][0]["value"] == 9.0
    ]
    assert spiked, f"no event names the spiked signal first: {events[:3]}"
    # metrics, scraped over HTTP, agree with what was sent
    assert worker.metric("anomstream_records_total", 'outcome="scored"') == len(records)
    assert worker.metric("anomstream_records_total", 'outcome="dead_lettered"') == 0


def test_malformed_messages_go_to_the_dlq_with_reasons_and_the_rest_is_scored(
    lane, bad_messages
) -> None:
    run = lane(max_message_bytes=MAX_MESSAGE_BYTES)
    run.create_topics()
    run.worker()
    good = [
        (b"ok", dumps(record("ok", i, {"x": float(i % 7)}))) for i in range(len(bad_messages) + 1)
    ]
    interleaved: list[tuple[bytes | None, bytes]] = []
    for g, b in zip(good, bad_messages, strict=False):
        interleaved += [g, b]
    interleaved.append(good[-1])
    # one array with a bad element among good ones: only that element is dead-lettered
    interleaved.append(
        (
            b"ok",
            dumps(
                [
                    record("ok", 900, {"x": 1.0}),
                    {"source": "ok", "ts": "never"},
                    record("ok", 901, {"x": 2.0}),
                ]
            ),
        )
    )
    run.produce(interleaved)
    s = run.settings
    dead = run.read(s.kafka.topic_dlq, len(bad_messages) + 1, timeout=90, settle=2.0)
    assert len(dead) == len(bad_messages) + 1
    reasons = set()
    for m in dead:
        headers = {k: v.decode() for k, v in m.headers}
        check("dead_letter", headers)
        assert headers["source_topic"] == s.kafka.topic_signals
        reasons.add(headers["error"].split(":")[0])
    assert reasons == {reason for _, reason in bad_stream()} | {"bad_ts"}
    originals = {m.value for m in dead}
    for _, raw in bad_messages:
        assert raw in originals, "dead letters carry the original bytes"
    scores = run.read(s.kafka.topic_scores, len(good) + 2, timeout=60, settle=2.0)
    assert len(scores) == len(good) + 2


def test_replay_a_csv_and_tail_the_scores(lane, tmp_path) -> None:
    run = lane()
    run.create_topics()
    run.worker()
    data = tmp_path / "plant.csv"
    lines = ["timestamp;source;temp;pressure"]
    for i in range(300):
        lines.append(
            f"2026-11-24T10:{i // 60:02d}:{i % 60:02d}Z;pump-{i % 2};{70 + (i % 5) * 0.1};"
        )
    data.write_text("\n".join(lines) + "\n")
    env = {**os.environ, **run.env("cli")}
    replay = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [sys.executable, "-m", "anomstream", "replay", str(data), "--rate", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert replay.returncode == 0, replay.stderr
    assert "produced 300 records" in replay.stdout
    scores = run.read(run.settings.kafka.topic_scores, 300, timeout=90, settle=1.0)
    assert len(scores) == 300
    first = orjson.loads(scores[0].value)
    assert first["missing"] == ["pressure"] or "pressure" not in first["signals"]
    tail = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [
            sys.executable,
            "-m",
            "anomstream",
            "tail",
            "--topic",
            "scores",
            "--from-beginning",
            "-n",
            "5",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert tail.returncode == 0, tail.stderr
    printed = [orjson.loads(line) for line in tail.stdout.splitlines() if line.strip()]
    assert len(printed) == 5
    for msg in printed:
        check("score", msg)
