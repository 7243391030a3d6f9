"""The local path a user takes first (issue 26): `anomstream broker`, then the worker, replay
and status with default settings, on a real broker. Tansu refuses idempotent producers: with
the setting left at its default the commands fall back and say so once; set to true, they stop
with one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from harness.brokers import free_port
from harness.workerproc import WorkerProcess, status_json
from tests.anomstream.test_cli import anomstream
from tests.integration.conftest import Lane, dumps, record

pytestmark = pytest.mark.integration

REFUSAL = "refuses idempotent producers"


def user_env(run: Lane, **extra: str) -> dict[str, str]:
    """A user's environment: the lane's broker and topics, idempotence left at its default."""
    env = {k: v for k, v in os.environ.items() if k != "ANOMSTREAM_PRODUCER_IDEMPOTENCE"}
    lane_env = run.env("user")
    keep = ("BROKER", "APP_ID", "TOPIC_SIGNALS", "TOPIC_SCORES", "TOPIC_ANOMALIES", "TOPIC_DLQ")
    env.update({f"ANOMSTREAM_{k}": lane_env[f"ANOMSTREAM_{k}"] for k in keep})
    env.update(extra)
    return env


def default_worker(run: Lane, name: str = "worker") -> WorkerProcess:
    """A worker whose producer idempotence is left at its default (true)."""
    env = run.env(name)
    del env["ANOMSTREAM_PRODUCER_IDEMPOTENCE"]
    worker = WorkerProcess(env, run.workdir / name, name=name)
    run.workers.append(worker)
    worker.start()
    worker.wait_ready(120)
    return worker


def write_csv(path: Path, rows: int) -> Path:
    lines = ["timestamp,source,temp,pressure"]
    for i in range(rows):
        lines.append(f"{1795514400 + i},pump-{i % 2 + 1},{70 + i % 7 * 0.1:.1f},{3 + i % 3 * 0.01}")
    path.write_text("\n".join(lines) + "\n")
    return path


def log_lines(worker: WorkerProcess, needle: str) -> list[str]:
    return [line for line in worker.log_path.read_text().splitlines() if needle in line]


def test_worker_and_replay_score_with_default_settings(
    lane: Any, broker_kind: str, tmp_path: Path
) -> None:
    run = lane()
    worker = default_worker(run)
    refused = broker_kind == "tansu"
    assert len(log_lines(worker, REFUSAL)) == (1 if refused else 0), worker.tail(20)
    assert not log_lines(worker, "Traceback")

    data = write_csv(tmp_path / "plant.csv", 60)
    done = anomstream("replay", str(data), "--rate", "0", env=user_env(run))
    assert done.returncode == 0, done.stderr
    assert "produced 60 records" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(warnings) == (1 if refused else 0), done.stderr
    if refused:
        assert REFUSAL in warnings[0] and "ANOMSTREAM_PRODUCER_IDEMPOTENCE=false" in warnings[0]

    scores = run.read(run.settings.kafka.topic_scores, 60, timeout=60)
    assert len(scores) == 60
    assert {orjson.loads(m.value)["source"] for m in scores} == {"pump-1", "pump-2"}


def test_status_over_http_and_from_the_command(lane: Any, broker_kind: str) -> None:
    run = lane()
    worker = default_worker(run)
    run.produce([(b"fan-1", dumps(record("fan-1", i, {"rpm": 1000.0 + i % 5}))) for i in range(30)])
    run.produce(
        [(b"fan-2", dumps(record("fan-2", i, {"rpm": 900.0, "temp": 40.0}))) for i in range(10)]
    )
    assert len(run.read(run.settings.kafka.topic_scores, 40, timeout=60)) == 40

    deadline = time.monotonic() + 15
    doc = status_json(worker.metrics_port)
    while time.monotonic() < deadline and (doc is None or doc["sources"]["held"] < 2):
        time.sleep(0.3)  # published every second
        doc = status_json(worker.metrics_port)
    assert doc is not None
    assert doc["ready"] is True and doc["uptime_s"] > 0 and doc["version"]
    assert doc["partitions"] == [0, 1, 2, 3]
    assert doc["topic"] == run.settings.kafka.topic_signals
    sources = doc["sources"]
    assert sources["held"] == 2 and sources["warming"] == 2  # the lane warms up for 100 values
    by_source = {w["source"]: w for w in sources["warming_listed"]}
    assert by_source["fan-1"]["records"] == 30 and by_source["fan-2"]["records"] == 10
    assert set(by_source["fan-2"]["signals"]) == {"rpm", "temp"}
    assert by_source["fan-2"]["needs"] > by_source["fan-1"]["needs"] > 0
    assert doc["models"] == {"loaded": [], "refused": []}
    assert doc["producer_idempotence"] is (broker_kind != "tansu")
    assert any(REFUSAL in note for note in doc["notes"]) is (broker_kind == "tansu")

    shown = anomstream(
        "status", "--json", "--url", f"http://127.0.0.1:{worker.metrics_port}", env=dict(os.environ)
    )
    assert shown.returncode == 0, shown.stderr
    assert orjson.loads(shown.stdout)["sources"]["held"] == 2
    table = anomstream("status", "--url", f"127.0.0.1:{worker.metrics_port}", env=dict(os.environ))
    assert table.returncode == 0 and "fan-2" in table.stdout and "rpm" in table.stdout


def test_set_to_true_explicitly_a_refusing_broker_stops_the_commands_in_one_line(
    lane: Any, broker_kind: str, tmp_path: Path
) -> None:
    if broker_kind != "tansu":
        pytest.skip("this broker accepts idempotent producers")
    run = lane()
    env = user_env(
        run,
        ANOMSTREAM_PRODUCER_IDEMPOTENCE="true",
        ANOMSTREAM_METRICS_PORT=str(free_port()),
        ANOMSTREAM_DATA_DIR=str(tmp_path / "data"),
    )
    for args in (["replay", str(write_csv(tmp_path / "d.csv", 5))], ["worker"]):
        done = anomstream(*args, env=env, timeout=90)
        assert done.returncode == 1, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("anomstream: error: ") and REFUSAL in last, done.stderr
        assert "producer_idempotence" in last and "cannot reach" not in last
        assert "Traceback" not in done.stderr


def test_the_broker_command_prints_the_commands_to_run_next(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anomstream",
            "broker",
            "--port",
            str(port),
            "--workdir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(9)]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = "".join(lines)
    url = f"kafka://127.0.0.1:{port}"
    assert f"listening on 127.0.0.1:{port}" in text
    for command in ("worker", "plant", "replay", "tail"):
        assert f"anomstream {command} " in text and f"--broker {url}" in text, text
    assert "anomstream status" in text
    assert "ANOMSTREAM_PRODUCER_IDEMPOTENCE=false" in text
