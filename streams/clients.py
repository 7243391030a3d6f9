"""Plain aiokafka clients for the commands around the worker (replay, tail, demo)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from streams.settings import Settings
from streams.topics import BrokerUnavailable, quiet_kafka_client

Client = TypeVar("Client", AIOKafkaProducer, AIOKafkaConsumer)


async def _started(client: Client, settings: Settings) -> Client:
    """Start a client; an unreachable broker is one line for the user, not a traceback."""
    try:
        with quiet_kafka_client():
            await client.start()
    except (KafkaConnectionError, KafkaError, OSError) as exc:
        await client.stop()
        raise BrokerUnavailable(
            f"cannot reach the Kafka broker at {settings.kafka.bootstrap_servers}: "
            f"{exc or type(exc).__name__}"
        ) from None
    return client


async def start_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """A started producer with the worker's delivery settings (acks=all, idempotence setting)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka.bootstrap_servers,
        "acks": "all",
        "enable_idempotence": settings.kafka.producer_idempotence,
        "linger_ms": settings.kafka.producer_linger_ms,
        **overrides,
    }
    return await _started(AIOKafkaProducer(**options), settings)


async def start_consumer(
    settings: Settings, topics: Sequence[str], from_beginning: bool, **overrides: Any
) -> AIOKafkaConsumer:
    """A started group-less consumer of `topics`."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        group_id=None,
        **overrides,
    )
    return await _started(consumer, settings)
