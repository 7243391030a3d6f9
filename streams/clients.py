"""Plain aiokafka clients for the commands around the worker (replay, tail, demo), and the
producer settings the worker starts with. Every client speaks `settings.security` (TLS, SASL).

Idempotence: some brokers refuse idempotent producers (the embedded Tansu answers the
`InitProducerId` request a producer sends at start with error -1, UNKNOWN_SERVER_ERROR; a Kafka
with ACLs and no IdempotentWrite right answers 31, CLUSTER_AUTHORIZATION_FAILED; very old ones
do not know the request). aiokafka asks at `start()`, so that is where it is decided: when an
idempotent producer fails to start on a broker that answers, a plain producer is tried; if that
one starts, the broker refused idempotence. Left at its default, the setting then falls back to
a plain producer with one warning (the worker is at-least-once and its messages carry
deterministic ids, so a duplicate from a retried send is harmless); set to true explicitly, it
stops with one line naming the setting.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from streams.security import client_security, connection_problem
from streams.settings import Settings
from streams.topics import (
    UNREACHABLE,
    BrokerUnavailable,
    kafka_error_text,
    quiet_kafka_client,
    start_error,
)

log = logging.getLogger(__name__)

Client = TypeVar("Client", AIOKafkaProducer, AIOKafkaConsumer)


class IdempotenceRefused(BrokerUnavailable):
    """The broker refuses idempotent producers and the user asked for one explicitly."""


async def _start_failure(exc: BaseException, settings: Settings, doing: str) -> BrokerUnavailable:
    """The one line for a client that did not start: a refused login, an untrusted certificate
    or a listener of another protocol looks like an unreachable broker to aiokafka: ask why."""
    bootstrap = settings.kafka.bootstrap_servers
    if isinstance(exc, UNREACHABLE):
        with quiet_kafka_client():
            problem = await connection_problem(bootstrap, settings.security)
        if problem is not None:
            return BrokerUnavailable(problem.text)
    return start_error(exc, bootstrap, doing)


async def _started(client: Client, settings: Settings, doing: str) -> Client:
    """Start a client; a broker error is one line for the user (its real cause), not a traceback."""
    try:
        with quiet_kafka_client():
            await client.start()
    except (KafkaError, OSError) as exc:
        await client.stop()
        raise await _start_failure(exc, settings, doing) from None
    return client


def idempotence_explicit(settings: Settings) -> bool:
    """Whether the user set `producer_idempotence` (env, config file) or left it at its default."""
    return "producer_idempotence" in settings.kafka.model_fields_set


def refusal(settings: Settings, exc: BaseException) -> str:
    """What the broker refused, in the words of the warning or of the error."""
    return (
        f"the Kafka broker at {settings.kafka.bootstrap_servers} refuses idempotent producers "
        f"(InitProducerId: {kafka_error_text(exc)})"
    )


async def _start_producer(
    settings: Settings, options: dict[str, Any]
) -> tuple[AIOKafkaProducer, str | None]:
    """A started producer and, if it fell back to a plain one, the warning that says so."""
    doing = "start a producer"
    if not options["enable_idempotence"]:
        return await _started(AIOKafkaProducer(**options), settings, doing), None
    producer = AIOKafkaProducer(**options)
    try:
        with quiet_kafka_client():  # aiokafka logs the refusal at ERROR: we say it once, below
            await producer.start()
        return producer, None
    except (KafkaError, OSError) as exc:
        await producer.stop()
        if isinstance(exc, UNREACHABLE):
            raise await _start_failure(exc, settings, doing) from None
        refused = exc
    # It answered: if a plain producer starts, what it refused was idempotence.
    plain = await _started(
        AIOKafkaProducer(**{**options, "enable_idempotence": False}), settings, doing
    )
    if idempotence_explicit(settings):
        await plain.stop()
        raise IdempotenceRefused(
            f"{refusal(settings, refused)}, and producer_idempotence is set to true "
            "(ANOMSTREAM_PRODUCER_IDEMPOTENCE or the config file): set it to false for this "
            "broker (the embedded Tansu broker needs false)"
        )
    note = (
        f"{refusal(settings, refused)}: producing without idempotence; set "
        "ANOMSTREAM_PRODUCER_IDEMPOTENCE=false to silence this warning"
    )
    log.warning("%s", note)
    return plain, note


def producer_options(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """The worker's delivery settings (acks=all, idempotence as set)."""
    return {
        "bootstrap_servers": settings.kafka.bootstrap_servers,
        "acks": "all",
        "enable_idempotence": settings.kafka.producer_idempotence,
        "linger_ms": settings.kafka.producer_linger_ms,
        **client_security(settings.security),
        **overrides,
    }


async def start_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """A started producer with the worker's delivery settings; falls back to a plain producer
    (one warning) on a broker that refuses idempotence, unless the user set it explicitly."""
    producer, _ = await _start_producer(settings, producer_options(settings, **overrides))
    return producer


async def settle_idempotence(settings: Settings) -> tuple[Settings, str | None]:
    """The settings the worker's producers can run with, decided once before Faust starts (a
    refusal inside Faust's start-up is a long traceback): a probe producer is started and
    stopped; if it had to fall back, the settings say `producer_idempotence = false` and the
    warning is returned (the worker's `/status` repeats it)."""
    if not settings.kafka.producer_idempotence:
        return settings, None
    producer, note = await _start_producer(settings, producer_options(settings))
    await producer.stop()
    if note is None:
        return settings, None
    kafka = settings.kafka.model_copy(update={"producer_idempotence": False})
    return settings.model_copy(update={"kafka": kafka}), note


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
        **client_security(settings.security),
        **overrides,
    )
    return await _started(consumer, settings, "start a consumer")
