"""`anomstream demo` end to end (own embedded broker: runs in the Tansu lane)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_readme import third_party_noise

pytestmark = pytest.mark.integration


def run_demo(
    tmp_path: Path, *args: str, timeout: float
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`anomstream demo --no-live ARGS` to its end: the output and the summary it wrote."""
    summary_path = tmp_path / "summary.json"
    command = [sys.executable, "-m", "anomstream", "demo", "--no-live", *args]
    result = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [*command, "--summary-json", str(summary_path)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result, json.loads(summary_path.read_text())


@pytest.mark.skipif(
    os.environ.get("ANOMSTREAM_TEST_BROKER", "tansu") != "tansu",
    reason="the demo always runs on its own embedded broker: tested in the Tansu lane",
)
def test_demo_scores_every_record_and_catches_the_injected_anomalies(tmp_path: Path) -> None:
    result, summary = run_demo(
        tmp_path, "--duration", "30", "--model-cache", str(tmp_path / "models"), timeout=420
    )
    noise = third_party_noise(result.stdout + result.stderr)
    assert not noise, f"third-party warnings in the demo's output: {noise[:5]}"
    print(result.stdout)
    assert summary["records_produced"] >= 30 * 300 * 0.95
    assert summary["scores_received"] == summary["records_produced"]
    assert summary["duplicate_scores"] == 0
    assert summary["dead_letters"] == summary["malformed_sent"] == 3
    detected = {i["kind"] for i in summary["injected"] if i["detected"]}
    assert len(detected) >= 4, summary["injected"]
    assert {"spike", "level_shift", "drift", "stuck"} <= detected
    # the demo trains (or reuses) its autoencoder, which catches what no signal shows alone
    assert summary["model"] and summary["model"].startswith("plant-")
    (broken,) = [i for i in summary["injected"] if i["kind"] == "correlation_break"]
    assert broken["detected"] and "autoencoder" in broken["by"], broken
    assert summary["false_alarm_episodes"] <= 5
    assert "anomstream demo summary" in result.stdout
    # nothing left behind: the broker and worker it started are gone
    assert len(summary["pids"]) == 2
    for pid in summary["pids"]:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} is still running"


@pytest.mark.skipif(
    os.environ.get("ANOMSTREAM_TEST_BROKER", "tansu") != "tansu",
    reason="the demo always runs on its own embedded broker: tested in the Tansu lane",
)
def test_the_demo_runs_on_influx_line_protocol(tmp_path: Path) -> None:
    """`--format influx`: the plant writes line protocol, the worker reads it; the malformed
    JSON the demo sends is not line protocol either and is dead-lettered."""
    _, summary = run_demo(
        tmp_path, "--duration", "20", "--no-model", "--format", "influx", timeout=300
    )
    assert summary["records_produced"] >= 20 * 300 * 0.95
    assert summary["scores_received"] == summary["records_produced"]
    assert summary["duplicate_scores"] == 0
    assert summary["dead_letters"] == summary["malformed_sent"] == 3
    assert any(i["detected"] for i in summary["injected"]), summary["injected"]
