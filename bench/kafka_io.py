"""The benchmarks' Kafka side: create topics, pre-load a backlog, watch an output topic.

Shared by the throughput and memory benchmarks; the reader notes the processor's CPU when the
first and the last outputs arrive, which is how catching up is timed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


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
