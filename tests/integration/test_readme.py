"""Every command block of the README, run as written on a fresh copy of the project.

A newcomer copies these blocks first; one that fails (a file that is not there, a flag that
changed, a broker that refuses the default settings) loses them in the first hour. Each `bash`
block is run by bash in a temporary copy of the tracked files, in README order, with the project's
`anomstream` on PATH and no `ANOMSTREAM_*` variable set, and must exit 0 and print what the
README promises. A block this test does not know fails it: say here how a new one is checked.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class Check:
    expect: tuple[str, ...] = ()
    """Patterns the block's output must hold (re.search, multiline)."""
    skip: str = ""
    """Why the block is not run here (then it must be run elsewhere)."""
    timeout: float = 600.0


CHECKS = {
    "make demo": Check(
        skip="`make demo` and `make test` are what .ci/run runs: this test runs inside the second"
        " and tests/integration/test_demo.py runs the demo"
    ),
    "anomstream plant --to-csv plant.csv": Check(
        expect=(
            r"wrote \d+ records .* to plant\.csv",
            r"labelled anomalous",
            r"model pumps-\w+ -> models/pumps",
            r"F1 \d\.\d+",
            r"\d+ events \(\d+ false",
            r"rows scored with pumps-\w+, \d+ events",
            r"4 rules, all valid; judged on \d+ rows of labelled\.csv",
        ),
    ),
    "anomstream broker &": Check(
        expect=(
            r"produced \d+ records to signals",
            r"pump-1",
        ),
        timeout=300.0,
    ),
    "anomstream serve &": Check(
        expect=(
            r'"status":"ok"',
            r'"summary":\{"records":1,',  # the inline detect
            r"HTTP/1.1 202 Accepted",
            r"location: /v1/jobs/labelled-1",
            r'"name":"pumps"',  # the model the train block made
        ),
        timeout=120.0,
    ),
}


def blocks(text: str) -> list[str]:
    return [b for b in BLOCK.findall(text)]


def key_of(block: str) -> str:
    """The block's first command, without its comment: what CHECKS is keyed by."""
    first = next(line for line in block.splitlines() if line.strip())
    command = first.split("  #")[0].strip()
    for key in CHECKS:
        if command.startswith(key):
            return key
    return command


def fresh_copy(dest: Path) -> Path:
    """The tracked files only, as a clone would have them (no .venv, no models, no data)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


NOISE = re.compile(r"Traceback|absl|oneDNN|\w+Warning\b|tensorflow/|cuda|E0000|W0000")
"""What third-party start-up chatter looks like (TensorFlow, absl, Python warnings)."""


def third_party_noise(output: str) -> list[str]:
    return [line for line in output.splitlines() if NOISE.search(line)]


def newcomer_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANOMSTREAM_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_block(block: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    # Background jobs (`cmd &`) are stopped with the block, also when a command fails.
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + block
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=cwd,
        env=newcomer_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"block timed out after {timeout:.0f} s:\n{block}\n--- output ---\n{out}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything a block left behind
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def test_every_block_is_known() -> None:
    found = [key_of(b) for b in blocks((ROOT / "README.md").read_text())]
    unknown = [k for k in found if k not in CHECKS]
    assert not unknown, f"README blocks tests/integration/test_readme.py does not check: {unknown}"
    assert set(found) == set(CHECKS), (
        f"CHECKS names blocks the README lost: {set(CHECKS) - set(found)}"
    )


@pytest.mark.integration
@pytest.mark.skipif(
    os.environ.get("ANOMSTREAM_TEST_BROKER", "tansu") != "tansu",
    reason="the README's local stack is the embedded broker: run in the Tansu lane",
)
def test_readme_blocks_run_as_written(tmp_path: Path) -> None:
    cwd = fresh_copy(tmp_path / "anomstream")
    for block in blocks((ROOT / "README.md").read_text()):
        check = CHECKS[key_of(block)]
        if check.skip:
            continue
        done = run_block(block, cwd, check.timeout)
        shown = f"\n{block}\n--- output ---\n{done.stdout[-6000:]}"
        assert done.returncode == 0, f"exit {done.returncode}:{shown}"
        for pattern in check.expect:
            assert re.search(pattern, done.stdout, re.M), f"no {pattern!r} in the output:{shown}"
        noise = third_party_noise(done.stdout)
        assert not noise, f"third-party noise or a traceback: {noise[:3]}{shown}"
