"""Child processes of the throughput benchmark, and the CPU time they spend.

Every processor under test runs in its own process, so that its CPU time can be read from
`/proc/<pid>/stat` without the benchmark's own producer and consumer in it, and so that they do
not share one event loop and one GIL with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.process import StartStop, spawn_logged, stop_process, tail_lines

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads included (Linux)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


class PythonChild(StartStop):
    """`python -m <module> <args>` with its output in a log file, stopped by pid."""

    def __init__(
        self,
        module: str,
        args: Sequence[str],
        workdir: Path,
        name: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.cmd = [sys.executable, "-m", module, *args]
        self.env = {**os.environ, **(env or {})}
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def start(self) -> None:
        self._proc = spawn_logged(self.cmd, self.log_path, self.env)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` seconds; returns the exit code."""
        return None if self._proc is None else stop_process(self._proc, timeout)

    def tail(self, n: int = 8) -> str:
        return " | ".join(line.rstrip() for line in tail_lines(self.log_path, n) if line.strip())
