"""`anomstream detect` raises the events a real worker publishes for the same CSV replayed into
the signals topic: same records, same order, same fields; only the ids and `input`, which hash the
record's position in the topic, differ (a file has none)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.messages import event_id
from detectors.records import Origin
from tests.anomstream.test_cli import anomstream
from tests.coupled import SIGNALS, START, coupled, zero_crossing
from tests.detectors.test_offline import positionless
from tests.schemas import check

pytestmark = pytest.mark.integration

SOURCES = ("pump-1", "pump-2")
ROWS = 700


def plant_csv(path: Path) -> Path:
    """Two sources interleaved, each with a correlation break; pump-2 also spikes in `c`."""
    series = {
        source: coupled(ROWS, seed=20 + k, break_at=zero_crossing(500))
        for k, source in enumerate(SOURCES)
    }
    series["pump-2"][350, 2] = 9.0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "source", *SIGNALS])
        for i in range(ROWS):
            ts = datetime.fromtimestamp(START + i, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            for source, values in series.items():
                writer.writerow([ts, source, *(f"{v:.6f}" for v in values[i])])
    return path


def by_source(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in SOURCES}
    for event in events:
        out[event["source"]].append(event)
    return out


def brief(event: dict[str, Any]) -> tuple[str, str, str, str]:
    return event["ts"], event["kind"], event["severity"], event["signals"][0]["name"]


def test_detect_raises_the_events_a_worker_publishes(lane, model_dir: Path, tmp_path: Path) -> None:
    data = plant_csv(tmp_path / "plant.csv")
    out = tmp_path / "scores.jsonl"
    done = anomstream("detect", str(model_dir), str(data), "--out", str(out))
    assert done.returncode == 0, done.stderr
    offline = [orjson.loads(line) for line in (tmp_path / "scores.events.jsonl").open("rb")]
    assert offline, done.stdout
    assert any(e["detectors"] == ["autoencoder"] for e in offline)

    models = tmp_path / "models"
    shutil.copytree(model_dir, models / model_dir.name)
    run = lane(models_dir=str(models), warmup=200)  # detect's: ScoringConfig's default
    run.create_topics()
    run.worker()
    replay = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [sys.executable, "-m", "anomstream", "replay", str(data), "--rate", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **run.env("cli")},
    )
    assert replay.returncode == 0, replay.stderr
    kafka = run.settings.kafka
    scores = run.read(kafka.topic_scores, ROWS * len(SOURCES), timeout=120, settle=1.0)
    assert len(scores) == ROWS * len(SOURCES)
    published = [
        orjson.loads(m.value) for m in run.read(kafka.topic_anomalies, len(offline), timeout=60)
    ]
    assert len(published) == len(offline)
    for event in published:
        check("event", event)
        place = Origin(kafka.topic_signals, event["input"]["partition"], event["input"]["offset"])
        assert event["id"] == event_id(event["source"], event["ts"], "score", place)

    stream, file = by_source(published), by_source(offline)
    for source in SOURCES:
        # time, kind, severity and first signal; then every field but the ids, and the ids
        assert [brief(e) for e in file[source]] == [brief(e) for e in stream[source]]
        assert [positionless(e) for e in file[source]] == [positionless(e) for e in stream[source]]
        assert [e["id"] for e in file[source]] == [
            event_id(source, e["ts"], "score") for e in stream[source]
        ]
