"""A worker started after `anomstream warmup` is warm from its first record, on Apache Kafka.

Three days of a noisy daily pattern for two sources are warmed up (from a CSV file, or from the
input topic), a worker is started on the same lane, and the next day is produced for those two
sources and a third one nobody warmed up. The warmed sources must be out of warm-up from their
first record, raise no anomaly on normal data, and score exactly as an uninterrupted offline run
over history + next day; the third source must start warming up (so the test can fail). From the
topic, the history records the worker reads again must be skipped: they are already in the state.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from anomstream.warmup import warm_states
from detectors.csvdata import read_table
from detectors.engine import Scorer
from detectors.offline import score_records
from detectors.records import Record
from streams.scoring import build_scorer
from streams.topics import changelog_topic
from tests.anomstream.test_cli import anomstream
from tests.anomstream.test_warmup import PER_DAY, daily_csv
from tests.integration.conftest import Lane, dumps
from tests.integration.test_recovery import TANSU_DEFECT

pytestmark = pytest.mark.integration

WARM = ("warm-1", "warm-2")
COLD = "cold-3"
DAYS = 3


def _lane(lane: Any, broker_kind: str, tmp_path: Path) -> Lane:
    """Restoring the table at start-up is what warm-up relies on: meaningless on Tansu."""
    if broker_kind == "tansu":
        pytest.skip(TANSU_DEFECT)
    run: Lane = lane(models_dir=tmp_path / "models")
    run.create_topics()
    return run


def _data(tmp_path: Path) -> tuple[Path, list[Record], list[Record]]:
    """The history file of the warmed sources, its records, and the next day of all three."""
    history = daily_csv(tmp_path / "history.csv", days=DAYS, sources=WARM, seed=1)
    after = daily_csv(tmp_path / "next.csv", 1, (*WARM, COLD), seed=2, first_day=DAYS)
    return history, read_table(history).records(), read_table(after).records()


def _messages(records: list[Record]) -> list[tuple[bytes | None, bytes]]:
    return [
        (r.source.encode(), dumps({"source": r.source, "ts": r.ts_text, "signals": r.signals}))
        for r in records
    ]


def _warmup(run: Lane, *args: str) -> str:
    result = anomstream(
        "warmup", *args, "--broker", run.broker.bootstrap, env={**os.environ, **run.env("warmup")}
    )
    assert result.returncode == 0, result.stderr
    assert "restart" in result.stdout
    return result.stdout


def _offline(scorer: Scorer, past: list[Record], after: list[Record]) -> dict[Any, float]:
    """Scores of an uninterrupted run over history + next day (the same scorer, no Kafka)."""
    scored = score_records(scorer, after, states=warm_states(scorer, past).states)
    assert len(scored) == len(after)
    return {(res.record.source, res.record.ts_text): res.score for res in scored}


def _check_next_day(run: Lane, past: list[Record], after: list[Record], scores: list[Any]) -> None:
    unique: dict[tuple[int, int], dict[str, Any]] = {}
    for m in scores:
        msg = orjson.loads(m.value)
        where = (msg["input"]["partition"], msg["input"]["offset"])
        assert unique.setdefault(where, msg) == msg, "a replayed record got another score"
    assert len(unique) == len(after)
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for msg in unique.values():
        by_source[msg["source"]].append(msg)
    assert sorted(by_source) == sorted((*WARM, COLD))
    for source in WARM:
        got = by_source[source]
        assert len(got) == PER_DAY, (source, len(got))
        warming = [m["ts"] for m in got if m["warming_up"]]
        assert not warming, f"{source} still warming up at {warming[:3]}"
        flagged = [(m["ts"], m["score"]) for m in got if m["is_anomaly"]]
        assert not flagged, f"{source}: normal data flagged after a warm start: {flagged}"
    assert by_source[COLD][0]["warming_up"], "a source nobody warmed up must start warming up"
    expected = _offline(build_scorer(run.settings), past, after)
    worst = max(
        abs(m["score"] - expected[(m["source"], m["ts"])])
        for got in by_source.values()
        for m in got
    )
    assert worst <= 1e-9, f"stream and uninterrupted offline run differ by {worst}"


def _partitions(messages: list[Any]) -> dict[bytes, set[int]]:
    out: dict[bytes, set[int]] = defaultdict(set)
    for m in messages:
        out[m.key].add(m.partition)
    return out


def test_warmup_from_a_csv_file(lane, broker_kind, tmp_path: Path) -> None:
    run = _lane(lane, broker_kind, tmp_path)
    s = run.settings
    history, past, after = _data(tmp_path)
    out = _warmup(run, str(history))
    assert "warm-1" in out and "warm-2" in out and out.count("yes") == 2

    run.worker("w1")
    run.produce(_messages(after))
    scores = run.read(s.kafka.topic_scores, len(after), timeout=180, settle=2.0)
    _check_next_day(run, past, after, scores)
    # Each state went to the changelog partition of its source's input partition: the one a
    # worker restores when it is given that input partition.
    inputs = _partitions(run.read(s.kafka.topic_signals, len(after), timeout=30, settle=0.5))
    states = _partitions(run.read(changelog_topic(s.kafka.app_id), 3, timeout=30, settle=1.0))
    for source in (*WARM, COLD):
        key = source.encode()
        assert len(inputs[key]) == 1
        assert states[key] == inputs[key], (source, states[key], inputs[key])


def test_warmup_from_the_topic_is_skipped_by_the_worker(lane, broker_kind, tmp_path: Path) -> None:
    run = _lane(lane, broker_kind, tmp_path)
    s = run.settings
    _, past, after = _data(tmp_path)
    run.produce([*_messages(past), (b"warm-1", b"{not json")])
    out = _warmup(run, "--from-topic", "--since", "1h")
    assert f"read {len(past) + 1} messages" in out and "skipped 1 malformed" in out

    worker = run.worker("w1")
    run.produce(_messages(after))
    # The worker reads the history again (a new group starts at the earliest offset): already
    # applied by the warmed states, it is skipped, so only the next day gets scores.
    scores = run.read(s.kafka.topic_scores, len(after), timeout=180, settle=5.0)
    _check_next_day(run, past, after, scores)
    # Seen failing about one run in twenty: with a new consumer group and a changelog that is
    # not empty, Faust sometimes never hands the records produced before the start to the agent,
    # and without a committed offset the gap guard (streams.continuity) cannot see the hole.
    replayed = worker.metric("anomstream_records_total", 'outcome="replayed"')
    dead = len(run.read(s.kafka.topic_dlq, 1, timeout=30, settle=0.5))
    assert (replayed, dead) == (len(past), 1), "the worker did not read the history again"
