"""The autoencoder in the running worker on a real broker: served, explained, and swapped for a
new version while records flow, without losing or duplicating one."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import orjson
import pytest

from tests.coupled import SIGNALS, coupled, zero_crossing
from tests.integration.conftest import dumps, record
from tests.schemas import check

pytestmark = pytest.mark.integration

SOURCE = "pump-1"


def messages(values, start: int) -> list[tuple[bytes | None, bytes]]:
    out: list[tuple[bytes | None, bytes]] = []
    for i, row in enumerate(values.tolist(), start=start):
        signals = dict(zip(SIGNALS, row, strict=True))
        out.append((SOURCE.encode(), dumps(record(SOURCE, i, signals))))
    return out


def test_the_worker_serves_the_model_and_takes_a_new_version_live(
    lane, model_dir: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(model_dir, models / "coupled")
    spec = orjson.loads((models / "coupled" / "model.json").read_bytes())
    first_label = f"coupled-{spec['version']}"
    run = lane(models_dir=str(models), models_refresh=0.5, warmup=200)
    run.create_topics()
    worker = run.worker()
    assert (
        worker.metric("anomstream_model_info", f'name="coupled",version="{spec["version"]}"') == 1
    )

    brk = zero_crossing(800)
    values = coupled(1100, seed=7, break_at=brk)
    run.produce(messages(values[:600], 0))
    s = run.settings.kafka
    early = [orjson.loads(m.value) for m in run.read(s.topic_scores, 600, timeout=120, settle=1.0)]
    assert len(early) == 600
    assert {m["model"] for m in early} == {first_label}
    assert all("autoencoder" in m["detectors"] for m in early[20:])

    # a retrained model lands in the same directory: the worker swaps it in between batches
    spec["version"] = "feedbeef"
    (models / "coupled" / "model.json").write_bytes(orjson.dumps(spec))
    deadline = time.monotonic() + 30
    while worker.metric("anomstream_model_info", 'name="coupled",version="feedbeef"') != 1:
        assert time.monotonic() < deadline, "the worker did not pick up the new model version"
        time.sleep(0.5)

    run.produce(messages(values[600:], 600))
    scores = [orjson.loads(m.value) for m in run.read(s.topic_scores, 1100, timeout=120)]
    assert len(scores) == 1100
    assert len({m["input"]["offset"] for m in scores}) == 1100
    late = scores[600:]
    for msg in late[:5]:
        check("score", msg)
    assert {m["model"] for m in late} == {"coupled-feedbeef"}
    # the ring buffer carried over: the new version scores from its very first record
    assert all("autoencoder" in m["detectors"] for m in late)
    assert not any(m["is_anomaly"] for m in scores[300:brk])

    events = [orjson.loads(m.value) for m in run.read(s.topic_anomalies, 1, timeout=30)]
    broken = [e for e in events if e["detectors"] == ["autoencoder"]]
    assert broken, f"no event from the autoencoder: {events[:3]}"
    check("event", broken[0])
    assert broken[0]["signals"][0]["name"] == "b"
    assert broken[0]["model"] == "coupled-feedbeef"
