"""Warm-up from history, without a broker: warm states, exact snapshots, one-line refusals."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest

from anomstream.warmup import (
    Warming,
    WarmupError,
    changelog_partition,
    parse_since,
    seasonal_periods,
    warm_states,
)
from detectors.csvdata import read_table
from detectors.engine import Scorer
from detectors.messages import score_message
from detectors.records import Origin, Record
from detectors.source_state import SourceState
from streams.scoring import build_scorer
from streams.settings import Settings, load_settings
from tests.anomstream.test_cli import anomstream

STEP = 300.0  # 5-minute samples
PER_DAY = 288
START = 1793491200.0  # 2026-11-01T00:00:00Z
SOURCES = ("pump-1", "pump-2")


def daily_csv(
    path: Path, days: int, sources: tuple[str, ...] = SOURCES, seed: int = 0, first_day: int = 0
) -> Path:
    """`days` of a noisy daily sine per source (two signals) from `START` + `first_day` days,
    with a source column."""
    rng = np.random.default_rng(seed)
    lines = ["timestamp,source,load,temp"]
    for k in range(first_day * PER_DAY, (first_day + days) * PER_DAY):
        t = START + k * STEP
        phase = 2 * np.pi * (t % 86400) / 86400
        stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for source in sources:
            load = 50 + 20 * np.sin(phase) + rng.normal(0, 2)
            temp = 20 + 3 * np.sin(phase - 0.6) + rng.normal(0, 0.3)
            lines.append(f"{stamp},{source},{load:.4f},{temp:.4f}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(environ={"ANOMSTREAM_WARMUP": "100"})


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Record], list[Record]]:
    """Three days of history and the day after, as the CSV reader gives them."""
    path = daily_csv(tmp_path_factory.mktemp("warmup") / "plant.csv", days=4)
    records = read_table(path).records()
    cut = 3 * PER_DAY * len(SOURCES)
    return records[:cut], records[cut:]


def _messages(scorer: Scorer, records: list[Record], states: dict[str, SourceState]) -> list[bytes]:
    out = []
    for start in range(0, len(records), 500):
        for res in scorer.score_batch(records[start : start + 500], states):
            assert res is not None
            out.append(orjson.dumps(score_message(res, scorer.config)))
    return out


def test_three_days_of_history_leave_every_source_warm(settings, history) -> None:
    past, after = history
    scorer = build_scorer(settings)
    warmed = warm_states(scorer, past)
    assert set(warmed.states) == set(SOURCES)
    for source in SOURCES:
        seen = warmed.summary[source]
        assert (seen.records, seen.warming_up) == (3 * PER_DAY, False)
        assert seen.last_ts == "2026-11-03T23:55:00Z"
        periods = seasonal_periods(warmed.states[source])
        if periods is not None:  # the seasonal detector tells the rhythm it found
            assert periods == {"load": "1d", "temp": "1d"}
    next_day = [orjson.loads(m) for m in _messages(scorer, after, warmed.states)]
    assert not any(m["warming_up"] for m in next_day)
    flagged = [(m["source"], m["ts"], m["score"]) for m in next_day if m["is_anomaly"]]
    assert not flagged, f"normal data flagged after a warm start: {flagged}"


def test_history_is_scored_as_it_arrives_never_held_whole(settings, history) -> None:
    """`warmup --from-topic` feeds what it reads straight into the scorer: memory holds the
    states and less than one micro-batch, whatever the history's length."""
    past, _ = history
    whole = warm_states(build_scorer(settings), past)
    scorer = build_scorer(settings)
    warming = Warming(scorer, batch=50)
    for start in range(0, len(past), 7):  # as the consumer hands records over, in odd chunks
        warming.add(past[start : start + 7])
        assert warming.held < 50
    streamed = warming.finish()
    assert streamed.summary == whole.summary
    for source, state in whole.states.items():
        assert orjson.dumps(streamed.states[source].to_json(scorer.suite)) == orjson.dumps(
            state.to_json(scorer.suite)
        )


def test_the_snapshot_round_trips_exactly(settings, history) -> None:
    """What the worker restores from the changelog scores the next day as the original does."""
    past, after = history
    scorer = build_scorer(settings)
    original = warm_states(scorer, past).states
    restored = {
        source: SourceState.from_json(
            orjson.loads(orjson.dumps(s.to_json(scorer.suite))), scorer.suite
        )
        for source, s in original.items()
    }
    assert _messages(scorer, after, restored) == _messages(scorer, after, original)
    for source in SOURCES:
        assert orjson.dumps(restored[source].to_json(scorer.suite)) == orjson.dumps(
            original[source].to_json(scorer.suite)
        )


def test_records_read_from_the_topic_are_skipped_by_the_worker_later(settings, history) -> None:
    """Warm-up from the topic applies the offsets it read: a worker replaying them skips them."""
    past, _ = history
    read = [
        Record(r.source, r.ts, r.ts_text, r.signals, Origin("signals", 3, i))
        for i, r in enumerate(past)
    ]
    scorer = build_scorer(settings)
    states = warm_states(scorer, read).states
    assert states["pump-1"].applied == {("signals", 3): len(read) - 2}
    assert scorer.score_batch(read[-10:], states) == [None] * 10
    assert changelog_partition("pump-1", states["pump-1"], partitions=4) == 3


def test_csv_states_go_to_the_partition_the_default_partitioner_picks() -> None:
    state = SourceState.new([])
    # murmur2 as the Java client computes it (the partitioner of Kafka's own producer)
    assert [changelog_partition(s, state, 4) for s in ("pump-1", "pump-2", "a", "b")] == [
        _java_partition(s.encode(), 4) for s in ("pump-1", "pump-2", "a", "b")
    ]


def _java_partition(key: bytes, partitions: int) -> int:
    """`Utils.toPositive(Utils.murmur2(key)) % partitions`, written out from Kafka's Java code."""
    m, r, h = 0x5BD1E995, 24, (0x9747B28C ^ len(key)) & 0xFFFFFFFF
    for i in range(0, len(key) - len(key) % 4, 4):
        k = int.from_bytes(key[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = key[len(key) - len(key) % 4 :]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


def test_no_records_is_refused(settings) -> None:
    with pytest.raises(WarmupError, match="no records"):
        warm_states(build_scorer(settings), [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01T00:00:00Z", START),
        ("2026-11-01T01:00:00+01:00", START),
        ("1793491200", START),
        ("14d", 2_000_000_000.0 - 14 * 86400),
        ("36h", 2_000_000_000.0 - 36 * 3600),
        ("90m", 2_000_000_000.0 - 90 * 60),
        ("2w", 2_000_000_000.0 - 14 * 86400),
    ],
)
def test_since_takes_times_and_ages(text: str, expected: float) -> None:
    assert parse_since(text, now=2_000_000_000.0) == expected


@pytest.mark.parametrize("text", ["yesterday", "0d", "14x", "-3d", "2026-13-01"])
def test_bad_since_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"age|RFC 3339"):
        parse_since(text)


def test_dry_run_prints_the_sources_and_writes_nothing(tmp_path: Path) -> None:
    data = daily_csv(tmp_path / "plant.csv", days=3)
    result = anomstream(
        "warmup", str(data), "--dry-run", "--broker", "127.0.0.1:1", env=_env(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    for source in SOURCES:
        assert source in result.stdout
    assert "yes" in result.stdout
    assert "dry run: nothing written" in result.stdout


def test_a_file_without_source_column_is_one_source(tmp_path: Path) -> None:
    data = tmp_path / "boiler.csv"
    data.write_text(
        "timestamp,temp\n"
        + "".join(f"{START + 60 * i:.0f},{20 + (i % 7) * 0.1:.2f}\n" for i in range(50))
    )
    named = anomstream("warmup", str(data), "--dry-run", "--source", "boiler-9", env=_env(tmp_path))
    assert named.returncode == 0, named.stderr
    assert "boiler-9" in named.stdout
    assert "no" in named.stdout  # 50 records: still warming up, and it says so
    stem = anomstream("warmup", str(data), "--dry-run", env=_env(tmp_path))
    assert "boiler " in stem.stdout


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANOMSTREAM_")}
    return {
        **env,
        "ANOMSTREAM_MODELS_DIR": str(tmp_path / "models"),
        "ANOMSTREAM_STARTUP_WAIT": "1",
        **extra,
    }


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["/nonexistent/history.csv"], "file not found"),
        (["{good}", "--since", "last tuesday"], "--since"),
        (["{good}", "--since", "2030-01-01T00:00:00Z"], "no records"),
        (["{bare}"], "no timestamp column"),
        (["{bare}", "--row-numbers"], "--row-numbers has none"),
        (["{good}", "--broker", "127.0.0.1:1"], "cannot reach the Kafka broker"),
        (["--from-topic", "--broker", "127.0.0.1:1"], "cannot reach the Kafka broker"),
        ([], "give either a CSV file or --from-topic"),
        (["{good}", "--from-topic"], "give either a CSV file or --from-topic"),
    ],
)
def test_refusals_are_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    good = daily_csv(tmp_path / "plant.csv", days=1, sources=("pump-1",))
    bare = tmp_path / "bare.csv"
    bare.write_text("temp,pressure\n71.2,3.1\n71.3,3.0\n")
    args = [a.format(good=good, bare=bare) for a in args]
    result = anomstream("warmup", *args, env=_env(tmp_path))
    assert result.returncode != 0
    # Writing waits for the broker (setting `startup_wait`) and says so once, as the worker does.
    lines = [
        line
        for line in result.stderr.strip().splitlines()
        if not line.startswith("waiting for the Kafka broker")
    ]
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr


def test_an_array_message_is_never_cut_between_two_warm_up_batches(settings) -> None:
    """Items of one array message carry the message's offset: cut in two, the second part would
    be judged against the offset the first part applied, and its items not learnt."""
    base = 1_795_514_400.0
    array = [  # one message of 8 items, two of them at the same time as the item before
        Record("a", base + k - (k in (3, 6)), "", {"x": float(k % 3)}, Origin("signals", 0, 0, k))
        for k in range(8)
    ]
    whole = Warming(build_scorer(settings), batch=100)
    whole.add(array)
    cut = Warming(build_scorer(settings), batch=5)
    cut.add(array)
    assert cut.held == 0  # scored in one piece although longer than a batch
    assert whole.finish().summary == cut.finish().summary
