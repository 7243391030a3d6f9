"""Throughput and latency of the worker beside a raw Kafka pass-through, on one broker, in one run.

For each input encoding (one record per message; JSON arrays of 100 records per message) and
each processor

- (a) raw: an aiokafka consume -> orjson parse -> serialise -> produce pass-through, the floor of
  any Python Kafka processor (`bench.passthrough`);
- (b) faust: a bare Faust agent doing the same 1-in-1-out (`bench.faust_bare`);
- (c) anomstream: the worker with the univariate suite;
- (d) anomstream with an autoencoder (trained for the workload's 8 signals before the run);

and, for the other input formats (`influx100`, `telegraf100`, `avro100`: the same records, 100
per message; Avro beside a real schema registry, `harness.registry`), the workers (c) and (d)
only, compared with themselves on JSON arrays (÷ JSON); each a child process with its own input
topic pre-loaded with the same seeded workload, it measures
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

The workload is `bench.workload`, the Kafka side `bench.kafka_io`, the processors and how one
is measured `bench.processors`; this module runs them all and reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bench import pyspy
from bench.kafka_io import create, load
from bench.processors import VARIANTS, Run, Variant, measure, topics_of
from bench.workload import AVRO_BATCH, BASE_TS, ENCODINGS, SIGNALS, workload
from harness.brokers import broker_from_spec
from harness.registry import Registry
from streams.formats.registry import SchemaRegistry

RESULTS = Path(__file__).resolve().parent / "results" / "throughput.json"


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
    out.add_column("÷ JSON", justify="right")
    json_runs = results.get("array100", {})
    for encoding in ENCODINGS:
        runs = results.get(encoding)
        if not runs:
            continue
        other_format = ENCODINGS[encoding][0] != "json"
        same_records = other_format and ENCODINGS[encoding][1] == ENCODINGS["array100"][1]
        base = {**json_runs, **runs} if other_format else runs
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
                _ratio(r, base.get("raw")) if v.key != "a" else "",
                _ratio(r, base.get("faust")) if v.key in "cd" else "",
                _ratio(r, json_runs.get(v.name)) if same_records and v.key in "cd" else "",
            )
        out.add_section()
    return out


def _ms(lat: dict[str, float]) -> str:
    missing = lat["records"] - lat["received"]
    text = f"{lat['p50_ms']:,.0f} / {lat['p99_ms']:,.0f}"
    return text + (f" ({missing:,} missing)" if missing else "")


def _ratio(r: dict[str, Any], base: dict[str, Any] | None) -> str:
    return "" if base is None else f"{r['records_per_s'] / base['records_per_s']:.2f}"


def bench_model(workdir: Path) -> Path:
    """A models folder with an autoencoder for the workload's signals (trained now, in seconds)."""
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
    format, per_message = ENCODINGS[encoding]
    messages = workload(
        run.records, run.sources, per_message, format=format, schema_id=run.schema_id
    )
    asyncio.run(load(run.bootstrap, [source for source, _ in pairs], messages, run.idem))


def uptime() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def run_all(
    run: Run, encodings: Sequence[str], variants: Sequence[Variant]
) -> Iterator[tuple[str, Variant, dict[str, Any]]]:
    for encoding in encodings:
        chosen = list(variants)
        if ENCODINGS[encoding][0] != "json":  # (a) and (b) parse JSON: the workers only
            chosen = [v for v in variants if v.name.startswith("worker")]
        started = time.monotonic()
        prepare(run, encoding, chosen)
        print(f"{encoding:9s} topics loaded in {time.monotonic() - started:.0f} s")
        for variant in chosen:
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
    parser.add_argument("--encodings", default=",".join(ENCODINGS), help=",".join(ENCODINGS))
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
    with (
        tempfile.TemporaryDirectory(prefix="anomstream-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        registry_url, schema_id = None, 1
        if "avro100" in encodings:
            registry = stack.enter_context(Registry(workdir / "registry"))
            registry_url = registry.url
            schema_id = SchemaRegistry(registry_url).register("bench-avro100-value", AVRO_BATCH)
            print(f"schema registry: {registry!r}, workload schema id {schema_id}")
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
                registry_url,
                schema_id,
            )
            for encoding, variant, result in run_all(run, encodings, variants):
                results.setdefault(encoding, {})[variant.name] = result
        finally:
            broker.stop()
    for encoding in encodings:
        results[encoding]["ratios"] = ratios(results[encoding])
        if ENCODINGS[encoding][0] != "json" and "array100" in results:
            results[encoding]["ratios"].update(
                {
                    f"{v.key}/json": results[encoding][v.name]["records_per_s"]
                    / results["array100"][v.name]["records_per_s"]
                    for v in VARIANTS
                    if v.name in results[encoding] and v.name in results["array100"]
                }
            )
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
