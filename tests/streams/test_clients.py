"""Producers and consumers at start (unit tier, no broker): each broker error gets its real cause,
and a broker that refuses idempotent producers gets a fallback or one line, as the user set it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaConnectionError,
    UnknownError,
    UnsupportedVersionError,
)

from streams import clients
from streams.clients import IdempotenceRefused, settle_idempotence, start_producer
from streams.settings import load_settings
from streams.topics import BrokerUnavailable, start_error

ADDRESS = "127.0.0.1:9092"


@pytest.mark.parametrize(
    ("error", "needle"),
    [
        (KafkaConnectionError("Unable to bootstrap from [...]"), "cannot reach the Kafka broker"),
        (OSError("Connection refused"), "cannot reach the Kafka broker"),
        (
            ClusterAuthorizationFailedError(),
            "refused to start a producer: Kafka error 31 CLUSTER_AUTHORIZATION_FAILED",
        ),
        (UnknownError(), "refused to start a producer: Kafka error -1 UNKNOWN"),
    ],
)
def test_start_errors_say_reachable_or_what_was_refused(error: Exception, needle: str) -> None:
    message = str(start_error(error, ADDRESS, "start a producer"))
    assert needle in message and ADDRESS in message
    assert "\n" not in message
    reachable = not isinstance(error, KafkaConnectionError | OSError)
    assert ("cannot reach" in message) is not reachable


class FakeProducer:
    """aiokafka's producer as a broker that refuses idempotence sees it (`refuse`)."""

    refuse: Exception | None = UnknownError()
    made: list[FakeProducer] = []  # noqa: RUF012 - the test's record of producers made

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.started = self.stopped = False
        FakeProducer.made.append(self)

    async def start(self) -> None:
        logging.getLogger("aiokafka.producer.sender").error("Unexpected error (aiokafka noise)")
        if self.options["enable_idempotence"] and self.refuse is not None:
            raise self.refuse
        self.started = True

    async def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeProducer]:
    FakeProducer.made = []
    FakeProducer.refuse = UnknownError()
    monkeypatch.setattr(clients, "AIOKafkaProducer", FakeProducer)
    return FakeProducer


def test_left_at_its_default_idempotence_falls_back_with_one_warning(
    fake: type[FakeProducer], caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(environ={"ANOMSTREAM_BROKER": ADDRESS})
    with caplog.at_level(logging.INFO):
        producer: Any = asyncio.run(start_producer(settings))
    assert producer.started and producer.options["enable_idempotence"] is False
    assert fake.made[0].stopped  # the refused one is closed
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, [r.getMessage() for r in lines]  # aiokafka's own error is kept quiet
    text = lines[0].getMessage()
    assert "refuses idempotent producers" in text and "Kafka error -1 UNKNOWN" in text
    assert "ANOMSTREAM_PRODUCER_IDEMPOTENCE=false" in text


def test_set_to_true_explicitly_a_refusal_stops_with_one_line_naming_the_setting(
    fake: type[FakeProducer],
) -> None:
    settings = load_settings(
        environ={"ANOMSTREAM_BROKER": ADDRESS, "ANOMSTREAM_PRODUCER_IDEMPOTENCE": "true"}
    )
    with pytest.raises(IdempotenceRefused) as caught:
        asyncio.run(start_producer(settings))
    message = str(caught.value)
    assert isinstance(caught.value, BrokerUnavailable)  # a user error: one line from the CLI
    assert "refuses idempotent producers" in message and "cannot reach" not in message
    assert "producer_idempotence" in message and "false" in message
    assert all(p.stopped for p in fake.made if p.started)  # the probe is not left open


def test_a_broker_that_refuses_producers_altogether_is_not_blamed_on_idempotence(
    fake: type[FakeProducer], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse_all(self: FakeProducer) -> None:
        raise ClusterAuthorizationFailedError()

    monkeypatch.setattr(FakeProducer, "start", refuse_all)
    settings = load_settings(environ={"ANOMSTREAM_BROKER": ADDRESS})
    with pytest.raises(BrokerUnavailable, match="refused to start a producer") as caught:
        asyncio.run(start_producer(settings))
    assert not isinstance(caught.value, IdempotenceRefused)


def test_an_unreachable_broker_is_said_so_without_a_second_try(
    fake: type[FakeProducer], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(self: FakeProducer) -> None:
        raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")

    monkeypatch.setattr(FakeProducer, "start", unreachable)
    settings = load_settings(environ={"ANOMSTREAM_BROKER": ADDRESS})
    with pytest.raises(
        BrokerUnavailable, match=r"cannot reach the Kafka broker at 127\.0\.0\.1:9092"
    ):
        asyncio.run(start_producer(settings))
    assert len(fake.made) == 1


def test_the_worker_settles_idempotence_once_before_it_starts(
    fake: type[FakeProducer],
) -> None:
    settings = load_settings(environ={"ANOMSTREAM_BROKER": ADDRESS})
    settled, note = asyncio.run(settle_idempotence(settings))
    assert settled.kafka.producer_idempotence is False and note is not None
    assert "without idempotence" in note
    assert all(p.stopped for p in fake.made)
    fake.refuse = None  # a broker that accepts it: the settings stay as they were
    assert asyncio.run(settle_idempotence(settings)) == (settings, None)


def test_unsupported_version_counts_as_a_refusal_too(fake: type[FakeProducer]) -> None:
    fake.refuse = UnsupportedVersionError()
    settings = load_settings(environ={"ANOMSTREAM_BROKER": ADDRESS})
    producer: Any = asyncio.run(start_producer(settings))
    assert producer.options["enable_idempotence"] is False
