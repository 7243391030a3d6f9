"""A worker in a child process: for the demo, the integration tests and the benchmarks.

Started as `python -m anomstream worker` with its settings in `ANOMSTREAM_*` variables, logging to a
file, ready when its metrics endpoint says `anomstream_ready 1`, stopped by pid (SIGTERM, then
SIGKILL after a timeout) or killed outright for crash tests. `/status` is read as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.process import StartStop, spawn_logged, stop_process, tail_lines


class WorkerError(RuntimeError):
    """The worker did not start or died; carries the end of its log."""


def metrics_text(port: int, timeout: float = 2.0) -> str | None:
    """The worker's `/metrics` page, or None if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as resp:
            text: str = resp.read().decode()
            return text
    except (urllib.error.URLError, OSError):
        return None


def status_json(port: int, timeout: float = 2.0) -> dict[str, Any] | None:
    """The worker's `/status` document, or None if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=timeout) as resp:
            document: dict[str, Any] = json.loads(resp.read())
            return document
    except (urllib.error.URLError, OSError, ValueError):
        return None


def metric_value(text: str, name: str, labels: str = "") -> float | None:
    """Value of one sample (`name{labels}`) in a Prometheus text page."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


class WorkerProcess(StartStop):
    """One `anomstream worker` child process."""

    def __init__(self, env: Mapping[str, str], workdir: Path, name: str = "worker") -> None:
        self.env = {**os.environ, **env}
        self.metrics_port = int(self.env["ANOMSTREAM_METRICS_PORT"])
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def start(self) -> None:
        cmd = [sys.executable, "-m", "anomstream", "worker"]
        self._proc = spawn_logged(cmd, self.log_path, self.env)

    def wait_ready(self, timeout: float = 90.0) -> float:
        """Block until the worker reports ready; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.returncode is not None:
                raise WorkerError(f"worker exited with {self.returncode}: {self.tail(8)}")
            text = metrics_text(self.metrics_port, timeout=1.0)
            if text is not None and metric_value(text, "anomstream_ready") == 1.0:
                return time.monotonic() - started
            time.sleep(0.2)
        raise WorkerError(f"worker not ready after {timeout:.0f} s: {self.tail(8)}")

    def metric(self, name: str, labels: str = "") -> float | None:
        text = metrics_text(self.metrics_port)
        return None if text is None else metric_value(text, name, labels)

    def status(self) -> dict[str, Any] | None:
        return status_json(self.metrics_port)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` seconds; returns the exit code."""
        return None if self._proc is None else stop_process(self._proc, timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, as far as Kafka and the state are concerned."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def tail(self, n: int = 30) -> str:
        return " | ".join(line.rstrip() for line in tail_lines(self.log_path, n) if line.strip())


def worker_env(
    bootstrap: str,
    metrics_port: int,
    data_dir: Path,
    app_id: str = "anomstream",
    idempotence: bool | None = True,
    fast_join: bool = True,
    **extra: str | int | float | bool,
) -> dict[str, str]:
    """`ANOMSTREAM_*` variables for a worker; `fast_join` lowers group timeouts (tests, demo);
    `idempotence=None` leaves the producer setting at its default (as a user who never set it)."""
    env: dict[str, str | int | float | bool] = {
        "BROKER": bootstrap,
        "METRICS_PORT": metrics_port,
        "DATA_DIR": str(data_dir),
        "APP_ID": app_id,
        "LOG_LEVEL": "info",
    }
    if idempotence is not None:
        env["PRODUCER_IDEMPOTENCE"] = idempotence
    if fast_join:
        env.update(
            BROKER_SESSION_TIMEOUT=10, BROKER_HEARTBEAT_INTERVAL=1, BROKER_REBALANCE_TIMEOUT=5
        )
    env.update({k.upper(): v for k, v in extra.items()})
    return {
        f"ANOMSTREAM_{k}": (str(v).lower() if isinstance(v, bool) else str(v))
        for k, v in env.items()
    }
