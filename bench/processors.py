"""The processors under test, (a) to (d), each in a child process, and how one is measured.

Starting a processor on its own topics, timing it through the backlog (optionally under py-spy)
and the two paced latency phases: one module for what `bench.throughput` repeats per processor
and encoding.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bench import pyspy
from bench.children import PythonChild, cpu_seconds
from bench.kafka_io import watch_outputs
from bench.latency import Latency, measure_latency
from bench.workload import ENCODINGS, Workload
from harness.brokers import free_port
from harness.workerproc import WorkerProcess, worker_env

LOG_LEVEL = "info"
"""The worker's default. At `warn` Faust's worker sets the root logger to DEBUG for its terminal
spinner, so every library's debug call (aiokafka: one per message sent) builds a log record."""
PROFILE_SECONDS = 30
"""At most; the profile stops when the backlog is done."""
STOP_SECONDS = 5.0
"""SIGTERM, then SIGKILL after this: everything is measured by then, and each processor has
topics of its own, so a stop that is not clean costs nothing (Faust waits long for acks)."""
SETTLE_SECONDS = 2.0
"""Idle time between catching up and the first latency phase (the last state save, commits)."""


class Child(Protocol):
    """A processor under test in its own process: the worker or a `PythonChild`."""

    def start(self) -> None: ...

    @property
    def pid(self) -> int | None: ...

    def stop(self, timeout: float = ...) -> int | None: ...

    def tail(self, n: int = ...) -> str: ...


@dataclass(frozen=True, slots=True)
class Variant:
    key: str
    name: str
    title: str


VARIANTS = (
    Variant("a", "raw", "raw aiokafka pass-through"),
    Variant("b", "faust", "bare Faust agent"),
    Variant("c", "worker", "anomstream (suite)"),
    Variant("d", "worker_autoencoder", "anomstream + autoencoder"),
)


@dataclass(frozen=True)
class Run:
    """What every measurement of one benchmark run shares."""

    bootstrap: str
    idem: bool
    workdir: Path
    models: Path | None
    partitions: int
    sources: int
    records: int
    phase_seconds: float
    profile: Path | None
    profile_of: str
    registry_url: str | None = None
    """For `avro100`: the schema registry the workers fetch `AVRO_BATCH` from."""
    schema_id: int = 1


def topics_of(variant: Variant, encoding: str) -> tuple[str, str]:
    """Input and output topic of one processor: its own, so runs never see each other's data."""
    base = f"bench-{encoding}-{variant.name}"
    output = f"{base}.scores" if variant.name.startswith("worker") else f"{base}.out"
    return f"{base}.signals", output


def start(variant: Variant, encoding: str, run: Run) -> Child:
    """Start the processor of `variant` on its input topic (it begins on the backlog at once)."""
    source, sink = topics_of(variant, encoding)
    name = f"{encoding}-{variant.name}"
    workdir = run.workdir / name
    child: Child
    if variant.name == "raw":
        args = [run.bootstrap, source, sink, f"{name}-group"]
        child = PythonChild(
            "bench.passthrough", args + ([] if run.idem else ["--no-idem"]), workdir, name
        )
    elif variant.name == "faust":
        args = [run.bootstrap, source, sink, f"{name}-app", str(workdir / "faust")]
        args += ["--partitions", str(run.partitions)]
        child = PythonChild("bench.faust_bare", args, workdir, name)
    else:
        # (c) gets an empty models folder: none of the repository's models may apply.
        models = run.models if variant.name == "worker_autoencoder" else workdir / "no-models"
        registry: dict[str, Any] = {"REGISTRY_URL": run.registry_url} if run.registry_url else {}
        env = worker_env(
            run.bootstrap,
            free_port(),
            workdir,
            app_id=f"{name}-app",
            idempotence=run.idem,
            TOPIC_SIGNALS=source,
            TOPIC_SCORES=sink,
            TOPIC_ANOMALIES=f"{name}.anomalies",
            TOPIC_DLQ=f"{name}.dlq",
            TOPIC_EPISODES=f"{name}.episodes",
            PARTITIONS=run.partitions,
            LOG_LEVEL=LOG_LEVEL,
            MODELS_DIR=str(models),
            INPUT_FORMAT=ENCODINGS[encoding][0],
            **registry,
        )
        child = WorkerProcess(env, workdir, name=name)
    child.start()
    return child


def catch_up(child: Child, sink: str, run: Run, profile: Path | None) -> dict[str, float]:
    """Records/s and CPU per 1,000 records while `child` works through the backlog."""
    pid = child.pid
    if pid is None:
        raise RuntimeError(f"processor exited at start: {child.tail()}")
    spies: list[subprocess.Popen[bytes]] = []

    def spy() -> None:
        """Profile from the first output on: start-up is not what we want to see."""
        if profile is not None:
            spies.append(pyspy.record(pid, profile, seconds=PROFILE_SECONDS))

    seen = asyncio.run(
        watch_outputs(
            run.bootstrap,
            sink,
            run.records,
            timeout=900,
            cpu=lambda: cpu_seconds(pid),
            alive=lambda: child.pid is not None,
            on_first=spy,
        )
    )
    for proc in spies:
        pyspy.finish(proc)  # the backlog is done: what follows is not "under load"
    if seen.n < run.records:
        raise RuntimeError(f"{seen.n} of {run.records} outputs on {sink}: {child.tail()}")
    counted = seen.n - seen.n_first
    seconds = seen.last - seen.first
    if counted <= 0 or seconds <= 0:
        raise RuntimeError(f"all outputs on {sink} came in one read: raise --records to measure")
    return {
        "records": seen.n,
        "seconds": seconds,
        "records_per_s": counted / max(seconds, 1e-9),
        "cpu_s_per_1k": 1000.0 * (seen.cpu_last - seen.cpu_first) / max(counted, 1),
    }


def paced(
    work: Workload, first_step: int, rate: float, run: Run, source: str, sink: str
) -> tuple[Latency, int]:
    """A latency phase of `run.phase_seconds` at `rate` records/s; returns it and the next step."""
    steps = work.steps_for(max(1, int(rate * run.phase_seconds)))
    messages = work.messages(first_step, steps)
    result = asyncio.run(measure_latency(run.bootstrap, source, sink, messages, rate, run.idem))
    return result, first_step + steps


def measure(variant: Variant, encoding: str, run: Run) -> dict[str, Any]:
    """Backlog throughput, then latency at that rate and at half of it, for one processor."""
    source, sink = topics_of(variant, encoding)
    format, per_message = ENCODINGS[encoding]
    work = Workload(run.sources, per_message, format=format, schema_id=run.schema_id)
    profile = run.profile if f"{variant.key}:{encoding}" == run.profile_of else None
    load_before = os.getloadavg()[0]
    child = start(variant, encoding, run)
    try:
        result: dict[str, Any] = catch_up(child, sink, run, profile)
        step = work.steps_for(run.records)
        time.sleep(SETTLE_SECONDS)
        rate = result["records_per_s"]
        # Half first: what the max-rate phase leaves queued would delay the next phase.
        at_half, step = paced(work, step, rate / 2, run, source, sink)
        at_max, step = paced(work, step, rate, run, source, sink)
    finally:
        child.stop(STOP_SECONDS)
    result["latency"] = {"max": at_max.to_json(), "half": at_half.to_json()}
    result["load_1min"] = [load_before, os.getloadavg()[0]]
    return result
