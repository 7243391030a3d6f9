"""Where a worker's time goes: record it with py-spy, and summarise the samples by stage.

`record` samples a running process without pausing it (`--nonblocking`), keeping only samples of
threads that were running (py-spy's default), one collapsed stack per line ("raw" format, frames
by function). `summarise` attributes each sample to the first stage, from the innermost frame
outwards, whose code it is in (Kafka client, Faust machinery, decoding, the detector core,
result building, messages, state, metrics), or to the event loop if none is found before it.
Its shares are of running samples, which is roughly CPU time.
Usage: `python -m bench.pyspy PROFILE.txt` prints the summary.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):\d+\)$")

Rule = tuple[str, str, str]
"""(stage, file pattern, function pattern)."""
STAGES: tuple[Rule, ...] = (
    ("Kafka client (aiokafka)", r"aiokafka/|kafka/", ""),
    ("Kafka client (aiokafka)", r"asyncio/tasks\.py", r"^gather$"),  # awaiting per-message acks
    ("state load/save (snapshots, table)", r"detectors/(source_state|persist)\.py", ""),
    ("state load/save (snapshots, table)", r"streams/state\.py|streams/faust_compat\.py", ""),
    ("checkpoints, offset checks (streams/)", r"streams/continuity\.py", ""),
    ("metrics (prometheus)", r"streams/metrics\.py|prometheus_client/", ""),
    ("decode + validate", r"streams/codec\.py|detectors/records\.py", ""),
    ("decode + validate", r"streams/processor\.py", r"_decode"),
    ("score messages (build + orjson)", r"detectors/messages\.py", ""),
    ("score messages (build + orjson)", r"streams/processor\.py", r"process"),
    ("autoencoder (windows, onnxruntime)", r"detectors/autoencoder\.py|onnxruntime/", ""),
    ("autoencoder (windows, onnxruntime)", r"detectors/model_verdicts\.py", ""),
    ("scorer collect (per-record results)", r"detectors/(collect|alerting)\.py", ""),
    ("scorer collect (per-record results)", r"detectors/fusion\.py", ""),
    ("scorer steps (detector core, compiled loops)", r"detectors/steps\.py", r"run_steps"),
    ("scorer batch layout (state arrays in/out)", r"detectors/(engine|batch)\.py", ""),
    ("Faust/mode per-event machinery", r"faust/|mode/", ""),
)
"""The first rule that matches, from the innermost frame outwards, names the stage."""
FALLBACKS: tuple[Rule, ...] = (
    ("scorer batch layout (state arrays in/out)", r"detectors/", ""),
    ("agent glue (streams/app.py)", r"streams/app\.py", ""),
)
"""Tried only when no stage rule matched: a detector helper counts for the engine stage that
called it (`run_steps`, `collect`), not for whichever engine frame is nearest the leaf."""
LOOP = "asyncio event loop (select, scheduling)"
LOOP_FRAME = re.compile(r"^(Handle\._run|BaseEventLoop\._run_once) \(asyncio/")
"""Frames beyond these are the loop's callers: a sample not placed before them is the loop's."""
OTHER = "other (interpreter, imports, libraries)"


@dataclass(frozen=True, slots=True)
class Summary:
    samples: int
    by_thread: list[tuple[str, int]]
    by_stage: list[tuple[str, int]]
    self_time: list[tuple[str, int]]
    total_time: list[tuple[str, int]]

    def lines(self, top: int = 15) -> list[str]:
        """The summary as text, shares in % of running samples."""

        def pct(n: int) -> str:
            return f"{100.0 * n / max(self.samples, 1):5.1f} %"

        out = [f"{self.samples} running samples"]
        out += ["by thread:"] + [f"  {pct(n)}  {name}" for name, n in self.by_thread]
        out += ["by stage:"] + [f"  {pct(n)}  {name}" for name, n in self.by_stage]
        out += ["top functions, self:"] + [f"  {pct(n)}  {f}" for f, n in self.self_time[:top]]
        out += ["top functions, total (below the event loop):"]
        out += [f"  {pct(n)}  {f}" for f, n in self.total_time[:top]]
        return out


def record(pid: int, out: Path, seconds: float, rate: int = 100) -> subprocess.Popen[bytes]:
    """Start py-spy on `pid` for `seconds`; it writes collapsed stacks to `out` when done."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        raise SystemExit("py-spy not found: install it with `pip install py-spy`")
    cmd = [exe, "record", "--pid", str(pid), "--nonblocking", "--format", "raw", "--function"]
    cmd += ["--threads", "--rate", str(rate), "--duration", str(int(seconds)), "--output", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop a recording early (py-spy writes its output on SIGINT) and wait for the file;
    say why if py-spy failed (it cannot attach without ptrace rights, for one)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    if proc.returncode:
        print(f"py-spy failed ({proc.returncode}): {err.decode(errors='replace')[-300:]}")


def stage_of(frames: list[str]) -> str:
    """The stage of a sample: stage rules then fallbacks, each from the innermost frame up to the
    event loop's (a socket write under aiokafka is aiokafka's; a bare select is the loop's)."""
    calls = []
    in_loop = False
    for frame in reversed(frames):
        if LOOP_FRAME.match(frame):
            in_loop = True
            break
        m = FRAME.match(frame)
        if m is not None:
            calls.append((m["file"], m["func"]))
    for rules in (STAGES, FALLBACKS):
        for file, func in calls:
            for stage, files, funcs in rules:
                if re.search(files, file) and (not funcs or re.search(funcs, func)):
                    return stage
    return LOOP if in_loop else OTHER


def below_loop(frames: list[str]) -> list[str]:
    """The frames a loop callback runs, without the trunk every sample shares (runpy, click,
    the worker, the loop itself), which would top the total list and say nothing."""
    for i in range(len(frames) - 1, -1, -1):
        if LOOP_FRAME.match(frames[i]):
            return frames[i + 1 :]
    return frames


def parse(lines: Iterable[str]) -> Iterable[tuple[str, list[str], int]]:
    """(thread, frames outermost first, samples) per line of py-spy's raw output."""
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        thread, *frames = stack.split(";")
        yield thread.split(": ", 1)[-1], frames, int(count)


def summarise(lines: Iterable[str]) -> Summary:
    threads: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for thread, frames, n in parse(lines):
        samples += n
        threads[thread] += n
        stages[stage_of(frames)] += n
        if frames:
            own[frames[-1]] += n
        for frame in set(below_loop(frames)):
            total[frame] += n
    return Summary(
        samples,
        threads.most_common(),
        stages.most_common(),
        own.most_common(),
        total.most_common(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="py-spy raw output (collapsed stacks)")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    with args.profile.open() as handle:
        print("\n".join(summarise(handle).lines(args.top)))


if __name__ == "__main__":
    main()
