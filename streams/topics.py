"""The topics the worker reads and writes, created explicitly before it starts consuming.

Faust restores a table partition from the changelog partition of the same number, so the
changelog must have exactly as many partitions as the input topic: when the input topic already
exists, its partition count wins over the `partitions` setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    BrokerResponseError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
    for_code,
)

from streams.security import client_security, connection_problem
from streams.settings import Settings
from streams.settings_security import SecuritySettings

log = logging.getLogger(__name__)

TABLE_NAME = "source-state"
DLQ_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Dead letters carry the original bytes, so the DLQ we create accepts more than the input
limit; a DLQ that exists with a smaller `max.message.bytes` gets truncated letters."""
MAX_STATE_BYTES = 1024 * 1024
"""The largest serialised state of one source the worker is sized for: the per-source cap on
signal names (`max_source_signals`, ~5.8 KB of state each) keeps a state near or below this."""
CHANGELOG_MAX_MESSAGE_BYTES = 4 * MAX_STATE_BYTES
"""`max.message.bytes` of the changelog topic we create, and the changelog producer's
`max.request.size` (Faust's default, 1,000,000, fails a save of a state just under 1 MB): four
times the largest state, so an estimate that is off, the key and the batch framing still fit."""
MESSAGE_OVERHEAD = 4096
"""Bytes kept free under a topic's `max.message.bytes` for the key, headers and batch framing."""


class BrokerUnavailable(RuntimeError):
    """The broker could not be reached in time, or refused what we asked; the message is one
    line for the user."""


UNREACHABLE = (KafkaConnectionError, KafkaTimeoutError, OSError)
"""Errors that mean no broker answered (wrong address or port, down, firewalled)."""


def kafka_error_text(exc: BaseException) -> str:
    """An aiokafka error as a user reads it: the broker's error code and name when it sent one."""
    if isinstance(exc, BrokerResponseError):
        text = f"Kafka error {exc.errno} {exc.message}"
        about = exc.description.rstrip(".")
        return f"{text} ({about[:1].lower()}{about[1:]})" if about else text
    return str(exc).strip() or type(exc).__name__


def start_error(exc: BaseException, bootstrap: str, doing: str) -> BrokerUnavailable:
    """One line for what failed at start (`doing`: "start a producer", ...): unreachable is not
    the same as reachable but refusing, and the user must see which it was."""
    if isinstance(exc, UNREACHABLE):
        return BrokerUnavailable(
            f"cannot reach the Kafka broker at {bootstrap}: {kafka_error_text(exc)}"
        )
    return BrokerUnavailable(
        f"the Kafka broker at {bootstrap} refused to {doing}: {kafka_error_text(exc)}"
    )


@contextlib.contextmanager
def quiet_kafka_client() -> Iterator[None]:
    """aiokafka logs every failed connection attempt; while we wait and retry, we say it once."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@dataclass(frozen=True, slots=True)
class TopicPlan:
    """Names and partition counts of everything the worker touches."""

    signals: str
    scores: str
    anomalies: str
    dlq: str
    changelog: str
    partitions: int
    replication: int
    dlq_max_bytes: int = DLQ_MAX_MESSAGE_BYTES
    """The DLQ topic's own `max.message.bytes`: larger dead letters are truncated."""
    episodes: str = ""
    """The compacted episode topic, keyed by source; "" sends no episode messages (the
    setting left empty, or a plan built by hand as tests and benchmarks do)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicPlan:
        return cls(
            signals=settings.kafka.topic_signals,
            scores=settings.kafka.topic_scores,
            anomalies=settings.kafka.topic_anomalies,
            dlq=settings.kafka.topic_dlq,
            changelog=changelog_topic(settings.kafka.app_id),
            partitions=settings.kafka.partitions,
            replication=settings.kafka.replication_factor,
            episodes=settings.kafka.topic_episodes,
        )


def changelog_topic(app_id: str) -> str:
    """Faust's name for the state table's changelog."""
    return f"{app_id}-{TABLE_NAME}-changelog"


async def _connect(
    bootstrap: str, wait: float, security: SecuritySettings | None = None
) -> AIOKafkaAdminClient:
    """An admin client, retried with backoff for up to `wait` seconds; a refused login or an
    untrusted certificate (which aiokafka reports as unreachable) stops at once."""
    security = security if security is not None else SecuritySettings()
    deadline = time.monotonic() + wait
    delay = 0.25
    announced = False
    while True:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=10_000, **client_security(security)
        )
        try:
            with quiet_kafka_client():
                await admin.start()
            return admin
        except (KafkaError, OSError) as exc:
            await admin.close()
            if not isinstance(exc, UNREACHABLE) and not getattr(exc, "retriable", False):
                # it answered with a refusal: waiting will not change that
                raise start_error(exc, bootstrap, "start an admin client") from None
            with quiet_kafka_client():
                problem = await connection_problem(bootstrap, security)
            if problem is not None and problem.final:
                raise BrokerUnavailable(problem.text) from None
            if time.monotonic() + delay > deadline:
                if problem is not None:
                    raise BrokerUnavailable(f"{problem.text} (waited {wait:.0f} s)") from None
                raise BrokerUnavailable(
                    f"cannot reach the Kafka broker at {bootstrap} "
                    f"(waited {wait:.0f} s): {kafka_error_text(exc)}"
                ) from None
            if not announced:
                log.warning("waiting for the Kafka broker at %s (up to %.0f s)", bootstrap, wait)
                announced = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def ensure_topics(settings: Settings, wait: float = 60.0) -> TopicPlan:
    """Create the missing topics; return the plan with the input topic's real partition count."""
    plan = TopicPlan.from_settings(settings)
    admin = await _connect(settings.kafka.bootstrap_servers, wait, settings.security)
    try:
        existing = await _partition_counts(admin)
        partitions = existing.get(plan.signals, plan.partitions)
        wanted = {
            plan.signals: (partitions, {}),
            plan.scores: (partitions, {}),
            plan.anomalies: (partitions, {}),
            plan.dlq: (partitions, {"max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)}),
            plan.changelog: (
                partitions,
                {
                    "cleanup.policy": "compact",
                    "max.message.bytes": str(CHANGELOG_MAX_MESSAGE_BYTES),
                },
            ),
        }
        if plan.episodes:  # the last message per source is its latest episode
            wanted[plan.episodes] = (partitions, {"cleanup.policy": "compact"})
        missing = [
            NewTopic(name, n, plan.replication, topic_configs=configs)
            for name, (n, configs) in wanted.items()
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                refused = topic_errors(await admin.create_topics(missing))
                if refused:
                    raise BrokerUnavailable(
                        f"the Kafka broker at {settings.kafka.bootstrap_servers} refused to "
                        f"create topic {refused[0][0]}: {kafka_error_text(refused[0][1])}"
                    )
            log.info("created topics %s", ", ".join(t.name for t in missing))
        counts = await _partition_counts(admin)
        if plan.changelog in counts and counts[plan.changelog] != partitions:
            raise BrokerUnavailable(
                f"topic {plan.changelog} has {counts[plan.changelog]} partitions but "
                f"{plan.signals} has {partitions}: they must match (delete the changelog or "
                "use a new app_id)"
            )
        limits = await _message_limits(admin, [plan.dlq, plan.changelog])
        dlq_limit = limits.get(plan.dlq, DLQ_MAX_MESSAGE_BYTES)
        if dlq_limit < DLQ_MAX_MESSAGE_BYTES:
            log.warning(
                "topic %s accepts messages up to %d bytes: larger dead letters are truncated "
                "(raise its max.message.bytes to %d to keep them whole)",
                plan.dlq,
                dlq_limit,
                DLQ_MAX_MESSAGE_BYTES,
            )
        changelog_limit = limits.get(plan.changelog, CHANGELOG_MAX_MESSAGE_BYTES)
        if changelog_limit < CHANGELOG_MAX_MESSAGE_BYTES:
            log.warning(
                "topic %s accepts messages up to %d bytes, less than the largest state (%d): "
                "set its max.message.bytes to %d",
                plan.changelog,
                changelog_limit,
                MAX_STATE_BYTES,
                CHANGELOG_MAX_MESSAGE_BYTES,
            )
        return replace(
            plan, partitions=partitions, dlq_max_bytes=min(dlq_limit, DLQ_MAX_MESSAGE_BYTES)
        )
    except (KafkaError, OSError) as exc:
        raise start_error(exc, settings.kafka.bootstrap_servers, "set up the topics") from None
    finally:
        await admin.close()


def topic_errors(response: Any) -> list[tuple[str, BrokerResponseError]]:
    """The topics a CreateTopics response refused, and why (one that exists is no refusal)."""
    refused = []
    for entry in getattr(response, "topic_errors", ()):
        topic, code = entry[0], entry[1]
        if code and code != TopicAlreadyExistsError.errno:
            error = for_code(code)(*(entry[2:3] if len(entry) > 2 and entry[2] else ()))
            refused.append((topic, error))
    return refused


async def _message_limits(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, int]:
    """Each topic's effective `max.message.bytes` (its own, or the broker's default)."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in topics]
    limits: dict[str, int] = {}
    try:
        responses: Any = await admin.describe_configs(resources)
    except KafkaError as exc:  # a broker or an ACL that does not answer: keep our sizes
        log.warning("cannot read the configs of %s: %s", ", ".join(topics), exc)
        return limits
    for response in responses:
        for error_code, _message, _kind, name, entries in response.resources:
            if error_code:
                continue
            for entry in entries:
                if entry[0] == "max.message.bytes" and entry[1] is not None:
                    limits[name] = int(entry[1])
    return limits


async def _partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    metadata = await admin.describe_topics(await admin.list_topics())
    counts: dict[str, int] = {}
    for topic in metadata:
        if topic.get("error_code", 0) == 0:
            counts[topic["topic"]] = len(topic["partitions"])
    return counts
