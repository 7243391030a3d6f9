"""Throughput of the worker against a raw aiokafka pass-through, on one broker, in one run.

For each input encoding (one record per message; JSON arrays of 100 records per message) it
pre-loads a topic with the same seeded workload (sources x 8 signals), then measures

- (a) raw: an aiokafka consume -> orjson parse -> serialise -> produce pass-through, the floor of
  any Python Kafka processor;
- (c) anomstream: the worker (univariate suite) catching up on the same topic;
- (d) anomstream with an autoencoder (trained for the workload's 8 signals before the run, served
  to every source) catching up on the same topic, in its own consumer group;

as records/s between the first and the last output message seen by a reader, and prints the
ratios (c)/(a) and (d)/(a). Usage: `python -m bench.throughput --broker kafka|tansu|host:port`.
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
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.brokers import broker_from_spec, free_port
from streams.workerproc import WorkerProcess, worker_env

RESULTS = Path(__file__).resolve().parent / "results" / "throughput.json"
SIGNALS = 8


def workload(
    records: int, sources: int, per_message: int, seed: int = 1
) -> list[tuple[bytes, bytes]]:
    rng = np.random.default_rng(seed)
    values = rng.normal(50.0, 5.0, (records, SIGNALS)).round(3)
    rows: list[dict[str, Any]] = [
        {
            "source": f"src-{i % sources:04d}",
            "ts": 1795514400 + i // sources,
            "signals": {f"s{k}": float(values[i, k]) for k in range(SIGNALS)},
        }
        for i in range(records)
    ]
    if per_message == 1:
        return [(r["source"].encode(), orjson.dumps(r)) for r in rows]
    # Arrays group consecutive records of one source, as a gateway batching per device would.
    by_source: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_source.setdefault(str(r["source"]), []).append(r)
    out = []
    for source, recs in by_source.items():
        for a in range(0, len(recs), per_message):
            out.append((source.encode(), orjson.dumps(recs[a : a + per_message])))
    return out


async def create(bootstrap: str, topics: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
    finally:
        await admin.close()


async def load(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]], idem: bool) -> None:
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
        futures = [await producer.send(topic, v, key=k) for k, v in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def count_outputs(
    bootstrap: str, topic: str, expected: int, timeout: float
) -> tuple[float, float, int]:
    """Read `topic` until `expected` messages: (time of first, time of last, count)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    first = last = 0.0
    n = 0
    deadline = time.monotonic() + timeout
    try:
        while n < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            got = sum(len(v) for v in batch.values())
            if got:
                now = time.monotonic()
                first = first or now
                last = now
                n += got
    finally:
        await consumer.stop()
    return first, last, n


async def passthrough(
    bootstrap: str, source: str, sink: str, idem: bool, stop: asyncio.Event
) -> None:
    """(a): consume -> parse -> serialise -> produce, one output per record."""
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"raw-{source}",
        enable_auto_commit=True,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=4_194_304,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=idem,
        linger_ms=5,
        max_batch_size=1_048_576,
    )
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=5000)
            futures = []
            for messages in batch.values():
                for m in messages:
                    obj = orjson.loads(m.value)
                    for rec in obj if isinstance(obj, list) else [obj]:
                        out = orjson.dumps({"source": rec["source"], "ts": rec["ts"], "score": 0.0})
                        futures.append(await producer.send(sink, out, key=m.key))
            if futures:
                await asyncio.gather(*futures)
    finally:
        await consumer.stop()
        await producer.stop()


def run_raw(bootstrap: str, topic: str, records: int, idem: bool) -> dict[str, float]:
    async def main() -> tuple[float, float, int]:
        stop = asyncio.Event()
        task = asyncio.create_task(passthrough(bootstrap, topic, topic + ".raw-out", idem, stop))
        try:
            return await count_outputs(bootstrap, topic + ".raw-out", records, timeout=600)
        finally:
            stop.set()
            await task

    first, last, n = asyncio.run(main())
    return {"records": n, "seconds": last - first, "records_per_s": n / max(last - first, 1e-9)}


def bench_model(workdir: Path) -> Path:
    """A models folder with an autoencoder for the workload's signals (trained now, ~10 s)."""
    from streams.csvdata import read_table
    from training.train import TrainOptions, train

    rng = np.random.default_rng(7)
    values = rng.normal(50.0, 5.0, (3000, SIGNALS)).round(3)
    data = workdir / "model-data.csv"
    with data.open("w") as handle:
        handle.write("ts," + ",".join(f"s{k}" for k in range(SIGNALS)) + "\n")
        for i, row in enumerate(values.tolist()):
            handle.write(f"{1795514400 + i}," + ",".join(map(str, row)) + "\n")
    root = workdir / "models"
    done = train(read_table(data), root / "bench", TrainOptions(name="bench"))
    print(f"autoencoder {done.spec.label}: trained in {done.seconds:.0f} s")
    return root


def run_worker(
    bootstrap: str,
    prefix: str,
    records: int,
    idem: bool,
    workdir: Path,
    variant: str = "suite",
    **extra: Any,
) -> dict[str, float]:
    name = f"{prefix}-{variant}"
    env = worker_env(
        bootstrap,
        free_port(),
        workdir / name,
        app_id=f"{name}-app",
        idempotence=idem,
        TOPIC_SIGNALS=f"{prefix}.signals",
        TOPIC_SCORES=f"{name}.scores",
        TOPIC_ANOMALIES=f"{name}.anomalies",
        TOPIC_DLQ=f"{name}.dlq",
        LOG_LEVEL="warn",
        **extra,
    )
    with WorkerProcess(env, workdir / name, name=name) as worker:
        worker.wait_ready(120)
        first, last, n = asyncio.run(
            count_outputs(bootstrap, f"{name}.scores", records, timeout=900)
        )
    return {"records": n, "seconds": last - first, "records_per_s": n / max(last - first, 1e-9)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="kafka", help="kafka | tansu | host:port")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results: dict[str, Any] = {"records": args.records, "sources": args.sources, "signals": SIGNALS}
    with tempfile.TemporaryDirectory(prefix="anomstream-bench-") as tmp:
        workdir = Path(tmp)
        broker = broker_from_spec(args.broker, workdir / "broker")
        broker.start()
        try:
            models = bench_model(workdir)
            kind = getattr(broker, "kind", "external")
            version = getattr(broker, "version", "?")
            results["broker"] = f"{kind} {version}"
            idem = kind != "tansu"
            print(f"broker: {kind} {version} at {broker.bootstrap}")
            for label, per_message in (("single", 1), ("array100", 100)):
                messages = workload(args.records, args.sources, per_message)
                prefix = f"bench-{label}"
                asyncio.run(
                    create(
                        broker.bootstrap,
                        [f"{prefix}.signals", f"{prefix}.signals.raw-out"],
                        args.partitions,
                    )
                )
                asyncio.run(load(broker.bootstrap, f"{prefix}.signals", messages, idem))
                raw = run_raw(broker.bootstrap, f"{prefix}.signals", args.records, idem)
                worker = run_worker(broker.bootstrap, prefix, args.records, idem, workdir)
                with_model = run_worker(
                    broker.bootstrap,
                    prefix,
                    args.records,
                    idem,
                    workdir,
                    variant="autoencoder",
                    MODELS_DIR=str(models),
                )
                results[label] = {
                    "raw": raw,
                    "worker": worker,
                    "worker_autoencoder": with_model,
                    "ratio": worker["records_per_s"] / raw["records_per_s"],
                    "ratio_autoencoder": with_model["records_per_s"] / raw["records_per_s"],
                }
                print(
                    f"{label:9s} (a) raw {raw['records_per_s']:8.0f} rec/s   (c) suite "
                    f"{worker['records_per_s']:7.0f} rec/s   (d) + autoencoder "
                    f"{with_model['records_per_s']:7.0f} rec/s   (c)/(a) "
                    f"{results[label]['ratio']:.2f}   (d)/(a) "
                    f"{results[label]['ratio_autoencoder']:.2f}   "
                    f"({worker['records']} and {with_model['records']} of {args.records} scored)"
                )
        finally:
            broker.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
