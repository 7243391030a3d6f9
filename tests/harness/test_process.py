"""harness.process: log tails, and stop by pid escalating to SIGKILL."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from harness.process import spawn_logged, stop_process, tail_lines

STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('up', flush=True); time.sleep(60)"
)


def test_tail_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    assert tail_lines(log, 3) == []
    log.write_text("".join(f"line {i}\n" for i in range(10)))
    assert tail_lines(log, 3) == ["line 7", "line 8", "line 9"]
    assert tail_lines(log, 0) == []


def test_stop_process_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    proc = spawn_logged([sys.executable, "-c", STUBBORN], log, os.environ, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while "up" not in tail_lines(log, 5) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "up" in tail_lines(log, 5), tail_lines(log, 5)
        assert tail_lines(log, 5)[1].startswith("=== start "), "a blank line, the banner, output"
        assert stop_process(proc, timeout=0.5) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
