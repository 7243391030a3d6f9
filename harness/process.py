"""Child processes of tests, benchmarks and the demo: spawned with a log file, stopped by pid.

Brokers, workers and benchmark children are all supervised the same way: own session (Ctrl-C
reaches only us), output appended to a log file after a start banner, SIGTERM by pid then
SIGKILL after a timeout, and (from the main thread) a parent-death signal so a SIGKILLed test
run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["StartStop", "spawn_logged", "stop_process", "tail_lines", "with_parent_death_signal"]


def with_parent_death_signal(cmd: list[str]) -> list[str]:
    """Prefix `setpriv --pdeathsig TERM` so the broker also goes if we are SIGKILLed.

    Linux ties the signal to the thread that forked, so only from the main thread (a pool
    thread's exit would otherwise kill a healthy broker); without setpriv, atexit must do.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return cmd
    return [setpriv, "--pdeathsig", "TERM", "--", *cmd]


def spawn_logged(
    cmd: list[str], log_path: Path, env: Mapping[str, str], cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `cmd` in its own session, output appended to `log_path` after a start banner.

    Its own session: Ctrl-C reaches only us, and we stop our children in order, by pid.
    """
    with log_path.open("ab") as log:
        log.write(f"\n=== start {time.strftime('%H:%M:%S')}: {' '.join(cmd)}\n".encode())
        log.flush()
        return subprocess.Popen(
            with_parent_death_signal(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            env=dict(env),
        )


def stop_process(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM by pid, then SIGKILL if it has not exited after `timeout` seconds; its exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


class StartStop:
    """`with` support for anything with `start()` and `stop()`: stopped also on errors."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def tail_lines(path: Path, n: int) -> list[str]:
    """Last n lines of a log file (empty if it does not exist yet)."""
    if n <= 0 or not path.is_file():
        return []
    with path.open("r", errors="replace") as handle:
        return [line.rstrip("\n") for line in deque(handle, maxlen=n)]
