"""(a) of the throughput benchmark: a raw aiokafka consume -> parse -> serialise -> produce.

The floor of any Python Kafka processor: one output message per input record, with the input's
provenance (as the worker's score messages carry it, so latency is measured the same way), no
framework in between. Run as a child process by `bench.throughput`:
`python -m bench.passthrough BOOTSTRAP INPUT OUTPUT GROUP [--no-idem]`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


def outputs(value: bytes, topic: str, partition: int, offset: int) -> list[bytes]:
    """One small output message per record of an input message (a record or an array)."""
    obj = orjson.loads(value)
    origin = {"topic": topic, "partition": partition, "offset": offset}
    records: list[Any] = obj if isinstance(obj, list) else [obj]
    return [
        orjson.dumps({"source": r["source"], "ts": r["ts"], "score": 0.0, "input": origin})
        for r in records
    ]


async def passthrough(
    bootstrap: str, source: str, sink: str, group: str, idem: bool, stop: asyncio.Event
) -> None:
    """Consume a batch, produce its outputs, await their acks, let auto-commit move on."""
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=group,
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
                    for out in outputs(m.value or b"", m.topic, m.partition, m.offset):
                        futures.append(await producer.send(sink, out, key=m.key))
            if futures:
                await asyncio.gather(*futures)
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bootstrap")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("group")
    parser.add_argument("--no-idem", dest="idem", action="store_false", help="for Tansu")
    args = parser.parse_args()

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await passthrough(args.bootstrap, args.input, args.output, args.group, args.idem, stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
