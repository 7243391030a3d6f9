"""Bounded memory: a worker fed 10,000 sources x 8 signals keeps its RSS flat after warm-up.

Streams rounds of one record per source (JSON arrays of 100 records from 100 sources per
message), samples the worker's RSS before the first record, once every source has been seen a
few times and again at the end, and reports the memory per source (RSS at the end less the idle
worker's, over the sources: what `ANOMSTREAM_MAX_SOURCES` is sized by) and the state bytes per
source as stored in the changelog.
Usage: `python -m bench.memory --broker kafka|tansu|host:port`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer

from bench.kafka_io import count_outputs, create, load
from harness.brokers import broker_from_spec, free_port
from harness.workerproc import WorkerProcess, worker_env
from streams.topics import changelog_topic

RESULTS = Path(__file__).resolve().parent / "results" / "memory.json"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def rounds(sources: int, start: int, count: int, seed: int) -> list[tuple[bytes, bytes]]:
    rng = np.random.default_rng(seed)
    messages = []
    for r in range(start, start + count):
        values = rng.normal(10.0, 1.0, (sources, 8)).round(3)
        recs = [
            {
                "source": f"m{s:05d}",
                "ts": 1795514400 + r,
                "signals": {f"s{k}": float(values[s, k]) for k in range(8)},
            }
            for s in range(sources)
        ]
        messages += [(b"batch", orjson.dumps(recs[a : a + 100])) for a in range(0, sources, 100)]
    return messages


async def state_sizes(bootstrap: str, topic: str) -> list[int]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    latest: dict[bytes, int] = {}
    try:
        idle = 0
        while idle < 5:
            batch = await consumer.getmany(timeout_ms=500)
            idle = 0 if batch else idle + 1
            for messages in batch.values():
                for m in messages:
                    if m.key is not None:
                        latest[m.key] = len(m.value or b"")
    finally:
        await consumer.stop()
    return [v for v in latest.values() if v]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="kafka", help="kafka | tansu | host:port")
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--warmup-rounds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results: dict[str, Any] = {"sources": args.sources, "signals": 8}
    with tempfile.TemporaryDirectory(prefix="anomstream-memory-") as tmp:
        workdir = Path(tmp)
        broker = broker_from_spec(args.broker, workdir / "broker")
        broker.start()
        try:
            kind = getattr(broker, "kind", "external")
            results["broker"] = f"{kind} {getattr(broker, 'version', '?')}"
            idem = kind != "tansu"
            print(f"broker: {results['broker']} at {broker.bootstrap}")
            prefix = "mem"
            env = worker_env(
                broker.bootstrap,
                free_port(),
                workdir / "data",
                app_id=f"{prefix}-app",
                idempotence=idem,
                TOPIC_SIGNALS=f"{prefix}.signals",
                TOPIC_SCORES=f"{prefix}.scores",
                TOPIC_ANOMALIES=f"{prefix}.anomalies",
                TOPIC_DLQ=f"{prefix}.dlq",
                LOG_LEVEL="warn",
            )
            asyncio.run(create(broker.bootstrap, [f"{prefix}.signals"], 4))
            with WorkerProcess(env, workdir, name="worker") as worker:
                worker.wait_ready(120)
                assert worker.pid is not None
                rss_idle = rss_bytes(worker.pid)
                curve = []
                started = time.monotonic()
                for r in range(args.rounds):
                    if r == args.warmup_rounds:
                        started = time.monotonic()
                    messages = rounds(args.sources, r, 1, r)
                    asyncio.run(load(broker.bootstrap, f"{prefix}.signals", messages, idem))
                    total = args.sources * (r + 1)
                    _, _, n = asyncio.run(
                        count_outputs(broker.bootstrap, f"{prefix}.scores", total, timeout=900)
                    )
                    curve.append(rss_bytes(worker.pid) / 2**20)
                seconds = time.monotonic() - started
                rss_warm, rss_end = curve[args.warmup_rounds - 1] * 2**20, curve[-1] * 2**20
            sizes = asyncio.run(state_sizes(broker.bootstrap, changelog_topic(f"{prefix}-app")))
        finally:
            broker.stop()
    results.update(
        records=n,
        rss_after_warmup_mib=rss_warm / 2**20,
        rss_end_mib=rss_end / 2**20,
        rss_growth=(rss_end - rss_warm) / rss_warm,
        rss_idle_mib=rss_idle / 2**20,
        rss_per_source_kib=(rss_end - rss_idle) / args.sources / 1024,
        state_bytes_per_source=float(np.mean(sizes)),
        state_bytes_per_signal=float(np.mean(sizes)) / 8,
        sources_in_changelog=len(sizes),
        records_per_s_after_warmup=args.sources * (args.rounds - args.warmup_rounds) / seconds,
        rss_mib_per_round=[round(v, 1) for v in curve],
    )
    print(
        f"{args.sources} sources x 8 signals, {n} records: RSS "
        f"{results['rss_after_warmup_mib']:.0f} MiB after warm-up -> "
        f"{results['rss_end_mib']:.0f} MiB at the end ({100 * results['rss_growth']:+.1f} %); "
        f"state {results['state_bytes_per_source']:.0f} bytes per source "
        f"({results['state_bytes_per_signal']:.0f} per signal) in the changelog"
    )
    print(
        f"memory per source: {results['rss_per_source_kib']:.0f} KiB "
        f"(RSS {results['rss_idle_mib']:.0f} MiB idle, before the first record)"
    )
    print("RSS MiB per round:", results["rss_mib_per_round"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
