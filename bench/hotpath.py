"""The worker's processing path without Kafka: µs per record by stage, before and after a change.

Runs `streams.processor.Processor` (decode -> state -> score -> messages -> sends) on the
throughput benchmark's workload with an in-memory store and a sink that acknowledges at once, so
what it prints is the worker's own CPU per record, stage by stage. `make bench-throughput` then
tells what that is worth with a broker in the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

from bench.workload import Workload
from detectors.models import ModelBook
from streams.codec import Limits
from streams.metrics import Metrics
from streams.processor import Processor
from streams.scoring import build_scorer
from streams.settings import load_settings
from streams.state import SourceStates
from streams.structs import InMessage
from streams.topics import TopicPlan

TOPICS = TopicPlan("signals", "scores", "anomalies", "dlq", "changelog", 4, 1)


class Sink:
    """Acknowledges every send at once; counts bytes."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0
        self._done: asyncio.Future[None] | None = None

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None
    ) -> Awaitable[Any]:
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
            self._done.set_result(None)
        self.messages += 1
        self.bytes += len(value)
        return self._done

    async def send_many(
        self, topic: str, messages: Sequence[tuple[bytes, bytes]]
    ) -> list[Awaitable[Any]]:
        return [await self.send(topic, key, value, None) for key, value in messages]


class Store:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def put(self, key: bytes, value: bytes, partition: int) -> Awaitable[Any]:
        self.data[key] = value
        return asyncio.sleep(0)

    def keys(self) -> list[bytes]:
        return list(self.data)

    def delete(self, key: bytes) -> Awaitable[Any]:
        self.data.pop(key, None)
        return asyncio.sleep(0)


def batches(records: int, per_message: int, batch_records: int) -> list[list[InMessage]]:
    work = Workload(100, per_message)
    msgs = work.messages(0, work.steps_for(records))
    per_batch = max(1, batch_records // per_message)
    out = []
    for start in range(0, len(msgs), per_batch):
        chunk = msgs[start : start + per_batch]
        out.append(
            [
                InMessage("signals", hash(k) % 4, start + i, k, v, None)
                for i, (k, v, _) in enumerate(chunk)
            ]
        )
    return out


async def run(
    records: int, per_message: int, batch_records: int, warm: int, models: Path | None = None
) -> None:
    settings = load_settings()
    scorer = build_scorer(settings, None if models is None else ModelBook(models))
    metrics = Metrics()
    proc = Processor(
        scorer, SourceStates(scorer, Store(), metrics), Sink(), TOPICS, Limits(), metrics
    )
    all_batches = batches(records + warm, per_message, batch_records)
    n_warm = max(1, warm // batch_records)
    for b in all_batches[:n_warm]:
        await proc.process(b)
    scored = 0
    started = time.perf_counter()
    cpu = time.process_time()
    for b in all_batches[n_warm:]:
        report = await proc.process(b)
        scored += report.scored
    await proc.states.flush()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    print(
        f"{per_message:>4} per message, batches of {batch_records}: {scored} records, "
        f"{1e6 * cpu / scored:.1f} µs CPU per record, {scored / wall:,.0f} records/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--warm", type=int, default=30_000)
    parser.add_argument("--per-message", type=int, default=100)
    parser.add_argument("--batch", type=int, default=2000, help="records per micro-batch")
    parser.add_argument(
        "--models", type=Path, help="a models folder: serve its autoencoders too (variant d)"
    )
    args = parser.parse_args()
    asyncio.run(run(args.records, args.per_message, args.batch, args.warm, args.models))


if __name__ == "__main__":
    main()
