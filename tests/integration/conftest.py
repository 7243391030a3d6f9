"""Real brokers for the integration tiers, and workers in child processes.

`ANOMSTREAM_TEST_BROKER=kafka|tansu|host:port` picks the broker (default: tansu, the embedded one).
The broker is started once per session on free ports; each test module gets its own topics and
consumer group, so tests do not see each other's records.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from harness.brokers import Broker, broker_from_spec, free_port
from harness.workerproc import WorkerProcess, worker_env
from streams.settings import Settings, load_settings
from streams.topics import ensure_topics

SPEC = os.environ.get("ANOMSTREAM_TEST_BROKER", "tansu")
_names = itertools.count()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = broker_from_spec(SPEC, tmp_path_factory.mktemp("broker"))
    b.start()
    print(f"\nintegration broker: {b!r}")
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="session")
def broker_kind(broker: Broker) -> str:
    return str(getattr(broker, "kind", "external"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """A failing integration test shows the end of the broker's log and of its workers' logs."""
    outcome: Any = yield
    report = outcome.get_result()
    if report.failed and call.when == "call":
        b = item.funcargs.get("broker") if hasattr(item, "funcargs") else None
        if b is not None:
            report.sections.append(("broker log (tail)", "\n".join(b.log_tail(40))))
        for w in getattr(item, "_workers", []):
            report.sections.append((f"{w.log_path.name} (tail)", w.tail(40).replace(" | ", "\n")))


class Lane:
    """One isolated lane on the broker: its own topics, group, data dir; workers and clients."""

    def __init__(self, broker: Broker, kind: str, workdir: Path, item: Any, **extra: Any) -> None:
        n = next(_names)
        self.prefix = f"t{n}-{int(time.time()) % 100000}"
        self.broker = broker
        self.kind = kind
        self.workdir = workdir
        self.item = item
        self.idempotence = kind != "tansu"
        self.extra = {
            "TOPIC_SIGNALS": f"{self.prefix}.signals",
            "TOPIC_SCORES": f"{self.prefix}.scores",
            "TOPIC_ANOMALIES": f"{self.prefix}.anomalies",
            "TOPIC_DLQ": f"{self.prefix}.dlq",
            "TOPIC_EPISODES": f"{self.prefix}.episodes",
            "WARMUP": 100,
            **{k.upper(): v for k, v in extra.items()},
        }
        self.workers: list[WorkerProcess] = []
        item._workers = self.workers  # type: ignore[attr-defined]

    def env(self, name: str) -> dict[str, str]:
        return worker_env(
            self.broker.bootstrap,
            free_port(),
            self.workdir / name / "data",
            app_id=f"{self.prefix}-app",
            idempotence=self.idempotence,
            **self.extra,
        )

    @property
    def settings(self) -> Settings:
        return load_settings(environ=self.env("settings"))

    def create_topics(self) -> None:
        asyncio.run(ensure_topics(self.settings, wait=30))

    def worker(
        self, name: str = "worker", start: bool = True, ready_timeout: float = 120
    ) -> WorkerProcess:
        w = WorkerProcess(self.env(name), self.workdir / name, name=name)
        self.workers.append(w)
        if start:
            w.start()
            w.wait_ready(ready_timeout)
        return w

    def stop(self) -> None:
        for w in self.workers:
            w.stop(timeout=15)

    def produce(self, messages: list[tuple[bytes | None, bytes]], topic: str | None = None) -> None:
        asyncio.run(
            produce(
                self.broker.bootstrap,
                topic or self.settings.kafka.topic_signals,
                messages,
                self.idempotence,
            )
        )

    def read(
        self,
        topic: str,
        count: int,
        timeout: float,
        settle: float = 1.0,
        distinct: Callable[[Any], Hashable] | None = None,
    ) -> list[Any]:
        """Read `topic` from the start until `count` messages (`distinct`: messages with distinct
        keys, so replayed duplicates do not end the read early), then `settle` s more, or until
        timeout."""
        return asyncio.run(read(self.broker.bootstrap, topic, count, timeout, settle, distinct))


@pytest.fixture
def lane(
    broker: Broker, broker_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Lane]]:
    lanes: list[Lane] = []

    def make(**extra: Any) -> Lane:
        new = Lane(broker, broker_kind, tmp_path / f"lane{len(lanes)}", request.node, **extra)
        lanes.append(new)
        return new

    try:
        yield make
    finally:
        for made in lanes:
            made.stop()


async def produce(
    bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]], idempotence: bool
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=idempotence,
        linger_ms=5,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def from_earliest(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """A consumer of `topic` from its first message, outside any group (nothing committed)."""
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )


async def read(
    bootstrap: str,
    topic: str,
    count: int,
    timeout: float,
    settle: float,
    distinct: Callable[[Any], Hashable] | None = None,
) -> list[Any]:
    consumer = from_earliest(bootstrap, topic)
    await consumer.start()
    out: list[Any] = []
    keys: set[Hashable] = set()
    try:
        deadline = time.monotonic() + timeout
        settled: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                out.extend(messages)
                if distinct is not None:
                    keys.update(distinct(m) for m in messages)
            if (len(out) if distinct is None else len(keys)) >= count:
                settled = settled or time.monotonic() + settle
                if time.monotonic() >= settled:
                    break
    finally:
        await consumer.stop()
    return out


def input_of(message: Any) -> tuple[int, int, int]:
    """A score message's input position: replays of one record share it."""
    where = orjson.loads(message.value)["input"]
    return (where["partition"], where["offset"], where.get("index", 0))


def record(source: str, i: int, signals: dict[str, float | None]) -> dict[str, Any]:
    return {"source": source, "ts": 1795514400 + i * 0.1, "signals": signals}


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)
