"""Influx line protocol and Telegraf JSON on a real broker: `replay --format` writes them, the
worker set to that format scores every record, and a bad line or metric goes to the dead letters
alone, with its reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.integration

ROWS = 200
TS = 1_795_514_400  # 2026-11-24T10:00:00Z
MIXED = {
    # one message of three records, the middle one bad: (value, its bad element, reason)
    "influx": (
        f"plant,host=pump-9 temp=70.5 {TS}\nplant,host=pump-9 temp=oops {TS + 1}\n"
        f"plant,host=pump-9 temp=70.7 {TS + 2}\n".encode(),
        f"plant,host=pump-9 temp=oops {TS + 1}".encode(),
        "bad_line_protocol",
    ),
    "telegraf-json": (
        orjson.dumps(
            {
                "metrics": [
                    {
                        "name": "plant",
                        "tags": {"host": "pump-9"},
                        "fields": {"temp": 70.5},
                        "timestamp": TS,
                    },
                    {
                        "name": "plant",
                        "tags": "pump-9",
                        "fields": {"temp": 70.6},
                        "timestamp": TS + 1,
                    },
                    {
                        "name": "plant",
                        "tags": {"host": "pump-9"},
                        "fields": {"temp": 70.7},
                        "timestamp": TS + 2,
                    },
                ]
            }
        ),
        orjson.dumps(
            {"name": "plant", "tags": "pump-9", "fields": {"temp": 70.6}, "timestamp": TS + 1}
        ),
        "bad_tags",
    ),
}


def csv_file(path: Path) -> Path:
    lines = ["timestamp;source;temp;pressure"]
    for i in range(ROWS):
        lines.append(f"{TS + i};plant/pump-{i % 2};{70 + (i % 5) * 0.1};{3 + (i % 3) * 0.01}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("fmt", ["influx", "telegraf-json"])
def test_each_format_is_scored_and_a_bad_line_is_dead_lettered_alone(
    lane, tmp_path: Path, fmt: str
) -> None:
    run = lane(input_format=fmt, influx_source_tags="host", influx_precision="ns")
    run.create_topics()
    run.worker()
    replay = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [
            sys.executable,
            "-m",
            "anomstream",
            "replay",
            str(csv_file(tmp_path / "plant.csv")),
            "--rate",
            "0",
            "--format",
            fmt,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **run.env("cli")},
    )
    assert replay.returncode == 0, replay.stderr
    assert f"produced {ROWS} records" in replay.stdout
    value, element, reason = MIXED[fmt]
    run.produce([(b"plant/pump-9", value)])
    s = run.settings
    scores = [
        orjson.loads(m.value)
        for m in run.read(s.kafka.topic_scores, ROWS + 2, timeout=120, settle=2.0)
    ]
    assert len(scores) == ROWS + 2
    by_source: dict[str, int] = {}
    for score in scores:
        by_source[score["source"]] = by_source.get(score["source"], 0) + 1
    assert by_source == {"plant/pump-0": ROWS // 2, "plant/pump-1": ROWS // 2, "plant/pump-9": 2}
    first = next(sc for sc in scores if sc["source"] == "plant/pump-0")
    assert first["ts"] == "2026-11-24T10:00:00.000Z" and set(first["signals"]) == {
        "temp",
        "pressure",
    }
    (dead,) = run.read(s.kafka.topic_dlq, 1, timeout=30, settle=2.0)
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["error"].startswith(f"{reason}: ")
    assert headers["record_index"] == "1"
    if fmt == "influx":
        assert dead.value == element  # the line's own bytes
    else:
        assert orjson.loads(dead.value) == orjson.loads(element)
