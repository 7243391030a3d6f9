"""harness.brokers without a running broker: broker specs and the CLI's one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.brokers import BrokerError, ExternalBroker, KafkaBroker, TansuBroker, broker_from_spec

REPO = Path(__file__).resolve().parents[2]


def test_broker_from_spec(tmp_path: Path) -> None:
    assert isinstance(broker_from_spec("kafka", tmp_path), KafkaBroker)
    assert isinstance(broker_from_spec(" Tansu ", tmp_path), TansuBroker)
    external = broker_from_spec("localhost:9092", tmp_path)
    assert isinstance(external, ExternalBroker)
    assert external.bootstrap == "localhost:9092"
    assert external.url == "kafka://localhost:9092"
    assert isinstance(broker_from_spec("kafka://10.1.2.3:19092", tmp_path), ExternalBroker)
    for bad in ("redpanda", "", "host:", ":9092"):
        with pytest.raises(BrokerError):
            broker_from_spec(bad, tmp_path)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    """Without java/mvn on PATH the CLI says why in one line and exits 1, no traceback."""
    env = dict(os.environ, PATH=str(tmp_path), ANOMSTREAM_CACHE=str(tmp_path / "cache"))
    out = subprocess.run(
        [sys.executable, "-m", "harness.brokers", "fetch"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert out.stderr.startswith("error: java not found")
