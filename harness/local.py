"""The brokers we run ourselves as child processes (Apache Kafka, Tansu): their shared base.

Start means spawn with a log file and block until a real metadata request from the cluster we
started succeeds; stop means by pid, SIGTERM then SIGKILL. A broker is never left behind: every
running one is registered here and stopped at interpreter exit, even if a test forgot to.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
from pathlib import Path

from harness.errors import BrokerError
from harness.probe import free_port, wait_ready
from harness.process import StartStop, spawn_logged, stop_process, tail_lines

__all__ = ["LocalBroker"]

# Strong references: a broker object dropped without stop() must still be stopped at exit.
_LIVE: set[LocalBroker] = set()


def _stop_all() -> None:
    """atexit: never leave a broker process behind, even if a test forgot to stop it."""
    for broker in list(_LIVE):
        with contextlib.suppress(Exception):
            broker.stop(timeout=5.0)


atexit.register(_stop_all)


class LocalBroker(StartStop):
    """Shared process handling: spawn with a log file, readiness, stop by pid, context manager."""

    kind: str = "?"
    version: str = "?"
    cluster_id: str

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else free_port()
        self.log_path = self.workdir / f"{self.kind}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    @property
    def pid(self) -> int | None:
        """The broker's pid while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Hook run before each start (Kafka formats its log dir on the first one)."""

    def start(self, timeout: float = 90.0) -> None:
        """Start the process and block until a Kafka metadata request succeeds."""
        if self.running:
            return
        self._prepare()
        self._proc = spawn_logged(self._command(), self.log_path, self._env(), self.workdir)
        _LIVE.add(self)
        try:
            wait_ready(self.bootstrap, timeout, self._dead_reason, self.cluster_id)
        except BaseException as exc:
            self.stop(timeout=5.0)
            if isinstance(exc, BrokerError):
                tail = " | ".join(line for line in self.log_tail(5) if line.strip())
                raise BrokerError(f"{self.kind} did not start: {exc}; log: {tail}") from None
            raise

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _dead_reason(self) -> str | None:
        if self._proc is None:
            return "not started"
        code = self._proc.poll()
        if code is None:
            return None
        return f"{self.kind} exited with code {code} (log: {self.log_path})"

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM by pid, then SIGKILL if it has not exited after `timeout` seconds."""
        proc, self._proc = self._proc, None
        _LIVE.discard(self)
        if proc is not None:
            stop_process(proc, timeout)

    def log_tail(self, n: int = 50) -> list[str]:
        return tail_lines(self.log_path, n)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.bootstrap}, version={self.version}, pid={self.pid})"
