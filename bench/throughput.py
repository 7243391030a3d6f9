"""Throughput and latency of the worker beside a raw Kafka pass-through, on one broker, in one run.

For each input encoding (one record per message; JSON arrays of 100 records per message) and
each processor

- (a) raw: an aiokafka consume -> orjson parse -> serialise -> produce pass-through, the floor of
  any Python Kafka processor (`bench.passthrough`);
- (b) faust: a bare Faust agent doing the same 1-in-1-out (`bench.faust_bare`);
- (c) anomstream: the worker with the univariate suite;
- (d) anomstream with an autoencoder (trained for the workload's 8 signals before the run);

each a child process with its own input topic pre-loaded with the same seeded workload, it
measures
1. records/s while it catches up on the backlog, between the first and the last output seen,
   and the CPU seconds per 1,000 records it spent meanwhile (`/proc/<pid>/stat`);
2. latency from produce to output received, once the backlog is done, with a producer paced
   at half that maximum rate and then at the maximum rate itself, a few seconds each
   (`bench.latency`). A pre-loaded backlog says nothing about latency; a producer offering the
   measured maximum while the processor works shows whether it keeps up with the benchmark's
   own producer and reader beside it (where it does not, the queue grows for the phase).

It prints one table with the ratios (c)/(a), (d)/(a), (d)/(b) and writes it all to
`bench/results/throughput.json`. `--profile FILE` also records one processor with py-spy while
it catches up (`--profile-of`, default the worker (c) on arrays) and summarises where its time
goes (`bench.pyspy`). Usage: `python -m bench.throughput --broker kafka|tansu|host:port`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.console import Console
from rich.table import Table

from bench import pyspy
from bench.children import PythonChild, cpu_seconds
from bench.latency import Latency, Message, measure_latency
from harness.brokers import broker_from_spec, free_port
from harness.workerproc import WorkerProcess, worker_env

RESULTS = Path(__file__).resolve().parent / "results" / "throughput.json"
SIGNALS = 8
BASE_TS = 1795514400
ENCODINGS = {"single": 1, "array100": 100}
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


# --------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Workload:
    """Records of `sources` sources, one time step after another, values from a seeded pool.

    Step t holds one record per source (ts = BASE_TS + t). One record per message: step by
    step, source by source. Arrays: each message holds `per_message` consecutive steps of one
    source (as a gateway batching per device would), sources in turn.
    """

    sources: int
    per_message: int
    seed: int = 1
    pool: int = 200_000

    def values(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        return rng.normal(50.0, 5.0, (self.pool, SIGNALS)).round(3)

    def steps_for(self, records: int) -> int:
        """Time steps that hold at least `records` records, whole messages only."""
        steps = math.ceil(records / self.sources)
        return math.ceil(steps / self.per_message) * self.per_message

    def messages(self, first_step: int, steps: int) -> list[Message]:
        pool = self.values()
        names = [f"s{k}" for k in range(SIGNALS)]

        def record(t: int, s: int) -> dict[str, Any]:
            row = pool[(t * self.sources + s) % self.pool].tolist()
            return {
                "source": f"src-{s:04d}",
                "ts": BASE_TS + t,
                "signals": dict(zip(names, row, strict=True)),
            }

        out: list[Message] = []
        n = self.per_message
        for block in range(first_step, first_step + steps, n):
            for s in range(self.sources):
                key = f"src-{s:04d}".encode()
                if n == 1:
                    out.append((key, orjson.dumps(record(block, s)), 1))
                else:
                    recs = [record(t, s) for t in range(block, block + n)]
                    out.append((key, orjson.dumps(recs), n))
        return out


def workload(
    records: int, sources: int, per_message: int, seed: int = 1
) -> list[tuple[bytes, bytes]]:
    """Key and value of the first `records` records (rounded up to whole steps and messages)."""
    work = Workload(sources, per_message, seed)
    return [(k, v) for k, v, _ in work.messages(0, work.steps_for(records))]


# --------------------------------------------------------------------------- Kafka helpers


async def create(bootstrap: str, topics: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
    finally:
        await admin.close()


async def load(
    bootstrap: str, topic: str | Sequence[str], messages: list[tuple[bytes, bytes]], idem: bool
) -> None:
    """Produce `messages` into each of `topic` (one topic or several) and await the acks."""
    topics = [topic] if isinstance(topic, str) else list(topic)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=idem,
        linger_ms=20,
        max_batch_size=1_048_576,
        max_request_size=4_194_304,
    )
    await producer.start()
    try:
        for name in topics:
            futures = [await producer.send(name, v, key=k) for k, v in messages]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


@dataclass(frozen=True, slots=True)
class Watch:
    """What a reader of an output topic saw: times, counts and CPU readings at first and last."""

    first: float
    last: float
    n: int
    n_first: int
    cpu_first: float
    cpu_last: float


async def watch_outputs(
    bootstrap: str,
    topic: str,
    expected: int,
    timeout: float,
    cpu: Callable[[], float] = lambda: 0.0,
    alive: Callable[[], bool] = lambda: True,
    on_first: Callable[[], object] = lambda: None,
) -> Watch:
    """Read `topic` from the start until `expected` messages, the timeout, or `alive()` fails;
    read `cpu()` when the first batch and the last one arrive; call `on_first()` at the first."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    first = last = cpu_first = cpu_last = 0.0
    n = n_first = 0
    deadline = time.monotonic() + timeout
    try:
        while n < expected and time.monotonic() < deadline and alive():
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            got = sum(len(v) for v in batch.values())
            if got:
                now, used = time.monotonic(), cpu()
                if not first:
                    first, n_first, cpu_first = now, got, used
                    on_first()
                last, cpu_last = now, used
                n += got
    finally:
        await consumer.stop()
    return Watch(first, last, n, n_first, cpu_first, cpu_last)


async def count_outputs(
    bootstrap: str, topic: str, expected: int, timeout: float
) -> tuple[float, float, int]:
    """Read `topic` until `expected` messages: (time of first, time of last, count)."""
    seen = await watch_outputs(bootstrap, topic, expected, timeout)
    return seen.first, seen.last, seen.n


# --------------------------------------------------------------------------- processors


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
            PARTITIONS=run.partitions,
            LOG_LEVEL=LOG_LEVEL,
            MODELS_DIR=str(models),
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
    work = Workload(run.sources, ENCODINGS[encoding])
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


# --------------------------------------------------------------------------- report


def ratios(runs: dict[str, Any]) -> dict[str, float | None]:
    """(c)/(a), (d)/(a), (d)/(b) in records/s; None where a side was not run."""
    pairs = {"c/a": ("worker", "raw"), "d/a": ("worker_autoencoder", "raw")}
    pairs["d/b"] = ("worker_autoencoder", "faust")
    return {
        label: runs[top]["records_per_s"] / runs[bottom]["records_per_s"]
        if top in runs and bottom in runs
        else None
        for label, (top, bottom) in pairs.items()
    }


def table(results: dict[str, Any]) -> Table:
    out = Table(title=f"throughput and latency, {results['records']:,} records per run")
    for column in ("encoding", "processor", "records/s", "CPU s / 1k rec", "p50/p99 ms @max"):
        out.add_column(column, justify="left" if column in {"encoding", "processor"} else "right")
    out.add_column("p50/p99 ms @half", justify="right")
    out.add_column("÷ (a)", justify="right")
    out.add_column("÷ (b)", justify="right")
    for encoding in ENCODINGS:
        runs = results.get(encoding)
        if not runs:
            continue
        for v in VARIANTS:
            r = runs.get(v.name)
            if r is None:
                continue
            lat = r["latency"]
            out.add_row(
                encoding,
                f"({v.key}) {v.title}",
                f"{r['records_per_s']:,.0f}",
                f"{r['cpu_s_per_1k']:.3f}",
                _ms(lat["max"]),
                _ms(lat["half"]),
                _ratio(r, runs.get("raw")) if v.key != "a" else "",
                _ratio(r, runs.get("faust")) if v.key in "cd" else "",
            )
        out.add_section()
    return out


def _ms(lat: dict[str, float]) -> str:
    missing = lat["records"] - lat["received"]
    text = f"{lat['p50_ms']:,.0f} / {lat['p99_ms']:,.0f}"
    return text + (f" ({missing:,} missing)" if missing else "")


def _ratio(r: dict[str, Any], base: dict[str, Any] | None) -> str:
    return "" if base is None else f"{r['records_per_s'] / base['records_per_s']:.2f}"


# --------------------------------------------------------------------------- main


def bench_model(workdir: Path) -> Path:
    """A models folder with an autoencoder for the workload's signals (trained now, ~10 s)."""
    from detectors.csvdata import read_table
    from training.train import TrainOptions, train

    rng = np.random.default_rng(7)
    values = rng.normal(50.0, 5.0, (3000, SIGNALS)).round(3)
    data = workdir / "model-data.csv"
    with data.open("w") as handle:
        handle.write("ts," + ",".join(f"s{k}" for k in range(SIGNALS)) + "\n")
        for i, row in enumerate(values.tolist()):
            handle.write(f"{BASE_TS + i}," + ",".join(map(str, row)) + "\n")
    root = workdir / "models"
    done = train(read_table(data), root / "bench", TrainOptions(name="bench"))
    print(f"autoencoder {done.spec.label}: trained in {done.seconds:.0f} s")
    return root


def prepare(run: Run, encoding: str, variants: Sequence[Variant]) -> None:
    """Create every processor's topics and pre-load each input with the same backlog."""
    pairs = [topics_of(v, encoding) for v in variants]
    topics = [t for pair in pairs for t in pair]
    asyncio.run(create(run.bootstrap, topics, run.partitions))
    messages = workload(run.records, run.sources, ENCODINGS[encoding])
    asyncio.run(load(run.bootstrap, [source for source, _ in pairs], messages, run.idem))


def uptime() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def run_all(
    run: Run, encodings: Sequence[str], variants: Sequence[Variant]
) -> Iterator[tuple[str, Variant, dict[str, Any]]]:
    for encoding in encodings:
        started = time.monotonic()
        prepare(run, encoding, variants)
        print(f"{encoding:9s} topics loaded in {time.monotonic() - started:.0f} s")
        for variant in variants:
            started = time.monotonic()
            result = measure(variant, encoding, run)
            print(
                f"{encoding:9s} ({variant.key}) {variant.title:27s} "
                f"{result['records_per_s']:9,.0f} records/s, measured in "
                f"{time.monotonic() - started:3.0f} s ({uptime()})"
            )
            yield encoding, variant, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="kafka", help="kafka | tansu | host:port")
    parser.add_argument("--records", type=int, default=200_000, help="backlog per run")
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--phase-seconds", type=float, default=5.0, help="per latency phase")
    parser.add_argument("--variants", default="abcd", help="a subset of abcd")
    parser.add_argument("--encodings", default=",".join(ENCODINGS), help="single,array100")
    parser.add_argument("--profile", type=Path, help="write a py-spy profile (raw) here")
    parser.add_argument("--profile-of", default="c:array100", help="variant:encoding to profile")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    variants = [v for v in VARIANTS if v.key in args.variants]
    encodings = [e for e in args.encodings.split(",") if e in ENCODINGS]
    results: dict[str, Any] = {
        "records": args.records,
        "sources": args.sources,
        "signals": SIGNALS,
        "partitions": args.partitions,
        "load_before": uptime(),
    }
    print(f"{uptime()} before")
    with tempfile.TemporaryDirectory(prefix="anomstream-bench-") as tmp:
        workdir = Path(tmp)
        broker = broker_from_spec(args.broker, workdir / "broker")
        broker.start()
        try:
            kind = getattr(broker, "kind", "external")
            results["broker"] = f"{kind} {getattr(broker, 'version', '?')}"
            print(f"broker: {results['broker']} at {broker.bootstrap}")
            models = bench_model(workdir) if any(v.key == "d" for v in variants) else None
            run = Run(
                broker.bootstrap,
                kind != "tansu",
                workdir,
                models,
                args.partitions,
                args.sources,
                args.records,
                args.phase_seconds,
                args.profile,
                args.profile_of,
            )
            for encoding, variant, result in run_all(run, encodings, variants):
                results.setdefault(encoding, {})[variant.name] = result
        finally:
            broker.stop()
    for encoding in encodings:
        results[encoding]["ratios"] = ratios(results[encoding])
    results["load_after"] = uptime()
    Console(width=160).print(table(results))
    print(f"{uptime()} after")
    if args.profile is not None and args.profile.exists():
        with args.profile.open() as handle:
            summary = "\n".join(pyspy.summarise(handle).lines()) + "\n"
        print(summary, end="")
        args.profile.with_suffix(".summary.txt").write_text(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
