"""`anomstream serve` as users run it: one-line refusals, and the real server over HTTP,
across a restart (a running job FAILED "server stopped", a queued one run after it)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from anomstream.api.store import JobStore
from tests.anomstream.api.conftest import series
from tests.anomstream.api.test_jobs import to_csv

SERVE = (
    "import sys; from anomstream.cli import cli, main; from anomstream.cli_serve import serve; "
    "cli.add_command(serve); main(sys.argv[1:])"
)
"""`anomstream serve` as it runs once cli.py registers it (registering twice is a no-op)."""


def env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ANOMSTREAM_API_")}
    return {**clean, "PYTHONUNBUFFERED": "1", **extra}


def serve(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [sys.executable, "-c", SERVE, "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env(**extra),
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "extra", "needle"),
    [
        (["--host", "0.0.0.0"], {}, "--host 0.0.0.0 lets other machines in: give --tokens-file"),
        ([], {"ANOMSTREAM_API_WORKERS": "many"}, "ANOMSTREAM_API_WORKERS: "),
        ([], {"ANOMSTREAM_API_PROT": "1"}, "did you mean ANOMSTREAM_API_PORT"),
        (["--tokens-file", "/nonexistent/tokens"], {}, "tokens file not found"),
    ],
)
def test_refusals_are_one_line(
    tmp_path: Path, args: list[str], extra: dict[str, str], needle: str
) -> None:
    done = serve("--data-dir", str(tmp_path), "--port", "0", *args, **extra)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("anomstream: error: ")]
    assert len(errors) == 1 and needle in errors[0], done.stderr
    assert "Traceback" not in done.stderr


def test_a_port_in_use_is_one_line(tmp_path: Path, taken_port: int) -> None:
    done = serve("--data-dir", str(tmp_path), "--port", str(taken_port))
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{taken_port}" in done.stderr
    assert "Traceback" not in done.stderr


class Server:
    """`anomstream serve` in its own process, on a free port."""

    def __init__(self, data: Path) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                SERVE,
                "serve",
                "--port",
                "0",
                "--data-dir",
                str(data),
                "--models-dir",
                str(data / "models"),
                "--log-level",
                "warning",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env(),
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found, line
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{found.group(1)}", timeout=30)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.http.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and self.process.poll() is None
            time.sleep(0.2)

    def job(self, job_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.http.get(f"/v1/jobs/{job_id}").json()
        return found

    def wait(self, job_id: str, until: set[str], timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (job := self.job(job_id))["status"] not in until:
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        return job

    def stop(self) -> int:
        self.http.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def test_the_real_server_over_http_and_across_a_restart(tmp_path: Path) -> None:
    server = Server(tmp_path)
    try:
        answer = server.http.post("/v1/detect", json={"records": series(30)})
        assert answer.status_code == 200 and len(answer.json()["scores"]) == 30
        assert server.http.get("/openapi.json").json()["info"]["title"] == "anomstream"
        csv = {"content-type": "text/csv"}
        big = server.http.post("/v1/jobs?id=big", content=to_csv(series(80_000)), headers=csv)
        small = server.http.post("/v1/jobs?id=small", content=to_csv(series(300)), headers=csv)
        assert big.status_code == small.status_code == 202
        server.wait("big", {"RUNNING"})
        assert server.job("small")["status"] == "QUEUED"  # one worker: it waits its turn
        pid = JobStore(tmp_path / "jobs.sqlite3").get("big").pid  # type: ignore[union-attr]
    finally:
        code = server.stop()
    assert code in {0, -signal.SIGTERM}  # uvicorn re-raises the signal after a clean stop
    assert pid and not Path(f"/proc/{pid}").exists()  # the stop ended the job's process
    left = JobStore(tmp_path / "jobs.sqlite3").get("big")
    assert left is not None and (left.status, left.error) == ("FAILED", "server stopped")

    again = Server(tmp_path)
    try:
        stopped = again.job("big")
        assert (stopped["status"], stopped["error"]) == ("FAILED", "server stopped")
        done = again.wait("small", {"SUCCEEDED", "FAILED"})
        assert done["status"] == "SUCCEEDED"
        scores = again.http.get(done["links"]["result.jsonl"])
        assert len(scores.text.splitlines()) == 300
    finally:
        again.stop()
