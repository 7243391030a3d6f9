"""Latency from produce to output received: a paced producer and a tail of the output topic.

Each input message's produce time is the moment `send()` is called; its partition and offset,
known once the broker acknowledges it, find the output messages that answer it through the
provenance every output carries (`input.partition`, `input.offset`; all records of an array
share their message's). Producer and tail run in this process on one clock.

The tail reads one partition of the output topic: its records answer the inputs of the same
partition number (inputs and outputs are keyed by source, and both topics have as many
partitions), so latency is measured on a quarter of the sources (of 4 partitions). Reading every
output would cost this process about as much CPU as the pass-through it measures, on 2 cores.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

Message = tuple[bytes, bytes, int]
"""Key, value, and how many records the value holds."""


@dataclass(frozen=True, slots=True)
class Latency:
    """One paced run: what was offered, what came back, and how long it took."""

    target_rate: float
    produced_rate: float
    """Records/s the producer reached (below the target if it could not keep up)."""
    output_rate: float
    """Records/s of outputs, all partitions, estimated from the sampled one's first to last."""
    records: int
    """Records produced to the sampled partition."""
    received: int
    p50_ms: float
    p99_ms: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def _tail_at_end(bootstrap: str, topic: str, partition: int) -> AIOKafkaConsumer:
    """A consumer of one partition of `topic`, at its end before anything is sent."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    await consumer.start()
    tp = TopicPartition(topic, partition)
    consumer.assign([tp])
    await consumer.seek_to_end(tp)
    await consumer.position(tp)
    return consumer


async def _paced_send(
    producer: AIOKafkaProducer, topic: str, messages: Sequence[Message], per_second: float
) -> list[tuple[float, asyncio.Future[Any], int]]:
    """Send message i at start + i / per_second (sooner if behind); note when each was sent."""
    start = time.perf_counter()
    sent: list[tuple[float, asyncio.Future[Any], int]] = []
    for i, (key, value, n) in enumerate(messages):
        delay = start + i / per_second - time.perf_counter()
        if delay > 0.001:
            await asyncio.sleep(delay)
        elif i % 64 == 0:
            await asyncio.sleep(0)  # let the tail and the producer's sender run
        now = time.perf_counter()
        sent.append((now, await producer.send(topic, value, key=key), n))
    return sent


async def _receive(
    consumer: AIOKafkaConsumer,
    partition: int,
    arrivals: list[tuple[int, float]],
    done: asyncio.Event,
) -> None:
    """Note (input offset, receive time) of every output that answers input `partition`."""
    while not done.is_set():
        batch = await consumer.getmany(timeout_ms=50, max_records=20_000)
        now = time.perf_counter()
        for messages in batch.values():
            for m in messages:
                origin = orjson.loads(m.value or b"{}").get("input") or {}
                if origin.get("partition") == partition:
                    arrivals.append((origin["offset"], now))


async def measure_latency(
    bootstrap: str,
    source: str,
    sink: str,
    messages: Sequence[Message],
    rate: float,
    idem: bool,
    partition: int = 0,
    drain: float = 60.0,
) -> Latency:
    """Produce `messages` at `rate` records/s into `source`; wait (up to `drain` s after the
    last send) for an output per record of `partition` on `sink`; percentiles of those."""
    per_message = max(1, messages[0][2])
    consumer = await _tail_at_end(bootstrap, sink, partition)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=idem,
        linger_ms=1,
        max_batch_size=1_048_576,
    )
    await producer.start()
    arrivals: list[tuple[int, float]] = []
    done = asyncio.Event()
    tail = asyncio.create_task(_receive(consumer, partition, arrivals, done))
    try:
        sent = await _paced_send(producer, source, messages, rate / per_message)
        await asyncio.gather(*(fut for _, fut, _ in sent))
        expected = sum(n for _, fut, n in sent if fut.result().partition == partition)
        deadline = time.perf_counter() + drain
        while len(arrivals) < expected and time.perf_counter() < deadline and not tail.done():
            await asyncio.sleep(0.05)
    finally:
        done.set()
        await tail
        await producer.stop()
        await consumer.stop()
    return _summarise(sent, arrivals, rate, partition)


def _summarise(
    sent: list[tuple[float, asyncio.Future[Any], int]],
    arrivals: list[tuple[int, float]],
    rate: float,
    partition: int,
) -> Latency:
    at: dict[int, float] = {}
    expected = 0
    for t, fut, n in sent:
        meta = fut.result()
        if meta.partition == partition:
            at[meta.offset] = t
            expected += n
    seconds = [now - at[offset] for offset, now in arrivals if offset in at]
    p50, p99 = np.percentile(seconds, [50, 99]) * 1000.0 if seconds else (float("nan"),) * 2
    first, last = (arrivals[0][1], arrivals[-1][1]) if arrivals else (0.0, 0.0)
    span = sent[-1][0] - sent[0][0] if len(sent) > 1 else 0.0
    records = sum(n for _, _, n in sent)
    return Latency(
        target_rate=rate,
        produced_rate=records / span if span > 0 else float("nan"),
        output_rate=len(seconds) / (last - first) * records / max(expected, 1)
        if last > first
        else float("nan"),
        records=expected,
        received=len(seconds),
        p50_ms=float(p50),
        p99_ms=float(p99),
    )
