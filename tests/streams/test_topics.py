"""Topic sizing (unit tier): the changelog holds the largest state, the DLQ limit is the topic's."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import ClusterAuthorizationFailedError

from streams import topics
from streams.processor import fit_dead_letter
from streams.topics import (
    CHANGELOG_MAX_MESSAGE_BYTES,
    DLQ_MAX_MESSAGE_BYTES,
    MAX_STATE_BYTES,
    MESSAGE_OVERHEAD,
    BrokerUnavailable,
    TopicPlan,
    _message_limits,
    topic_errors,
)


def test_the_changelog_is_sized_for_the_largest_state_with_room_to_spare() -> None:
    assert CHANGELOG_MAX_MESSAGE_BYTES >= 2 * MAX_STATE_BYTES
    assert MAX_STATE_BYTES >= 1_000_000  # another owner's cap keeps a state below ~1 MB


def test_a_plan_uses_the_full_dlq_limit_unless_told_the_topics() -> None:
    plan = TopicPlan("signals", "scores", "anomalies", "signals.dlq", "cl", 4, 1)
    assert plan.dlq_max_bytes == DLQ_MAX_MESSAGE_BYTES


class Admin:
    """`describe_configs` as aiokafka returns it: (error, message, type, name, entries)."""

    def __init__(self, limits: dict[str, int | None]) -> None:
        self.limits = limits

    async def describe_configs(self, resources: list[Any]) -> list[Any]:
        rows: list[tuple[int, str | None, int, str, list[Any]]] = []
        for res in resources:
            limit = self.limits.get(res.name)
            if limit is None:
                rows.append((3, "unknown topic", 2, res.name, []))
            else:
                entries: list[Any] = [("cleanup.policy", "delete", False, 5, False, [])]
                entries.append(("max.message.bytes", str(limit), False, 1, False, []))
                rows.append((0, None, 2, res.name, entries))
        return [SimpleNamespace(resources=rows)]


def test_existing_topics_limits_are_read_and_unknown_topics_left_out() -> None:
    admin: Any = Admin({"dlq": 200_000, "cl": 1_048_588, "gone": None})
    found = asyncio.run(_message_limits(admin, ["dlq", "cl", "gone"]))
    assert found == {"dlq": 200_000, "cl": 1_048_588}


def test_a_dead_letter_that_fits_is_sent_whole() -> None:
    headers = [("error", b"bad_json: x")]
    key, value, sent = fit_dead_letter(b"k", b"{oops", headers, 10_000)
    assert (key, value, sent) == (b"k", b"{oops", headers)


def test_an_oversized_dead_letter_keeps_a_prefix_its_size_and_sha256() -> None:
    import hashlib

    original = bytes(range(256)) * 4_000  # 1,024,000 bytes
    limit = 200_000
    headers = [("error", b"too_large: 1024000 bytes"), ("source_offset", b"7")]
    key, value, sent = fit_dead_letter(b"key", original, headers, limit)
    assert key == b"key"
    named = dict(sent)
    assert original.startswith(value)
    assert named["original_size"] == b"1024000"
    assert named["original_sha256"] == hashlib.sha256(original).hexdigest().encode()
    used = len(value) + 3 + sum(len(k) + len(v) for k, v in sent)
    assert used <= limit - MESSAGE_OVERHEAD
    assert len(value) > limit - 2 * MESSAGE_OVERHEAD


def record_size(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    """Bytes of a record batch holding this one message, as the producer builds it."""
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    batch = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 2**24)
    batch.append(0, timestamp=None, key=key, value=value, headers=headers)
    return len(batch.build())


def test_a_dead_letter_fits_a_tiny_dlq_limit_even_with_a_huge_key_and_error() -> None:
    # The value alone was cut before: a 5 KB key or error detail still made the letter larger
    # than a 2 KB topic accepts, and the refused send stopped the worker.
    key, value = b"k" * 5_000, b"v" * 50_000
    headers = [("error", b"bad_source: " + b"x" * 3_000), ("source_offset", b"7")]
    for limit in (1_024, 2_048, 10_000):
        sent_key, sent_value, sent = fit_dead_letter(key, value, headers, limit)
        assert record_size(sent_key, sent_value, sent) <= limit, limit
        named = dict(sent)
        assert named["original_size"] == b"50000" and named["source_offset"] == b"7"
        assert named["error"].startswith(b"bad_source: ")
        assert sent_key and key.startswith(sent_key) and value.startswith(sent_value)


def test_created_topics_that_the_broker_refused_are_named_with_their_error() -> None:
    response = SimpleNamespace(
        topic_errors=[("a", 0, None), ("b", 36, "exists"), ("c", 29, "not allowed")]
    )
    [(topic, error)] = topic_errors(response)
    assert topic == "c" and error.errno == 29


def test_a_broker_that_refuses_the_admin_client_is_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tries: list[int] = []

    class Admin:
        def __init__(self, **kwargs: Any) -> None:
            tries.append(1)

        async def start(self) -> None:
            raise ClusterAuthorizationFailedError()

        async def close(self) -> None:
            pass

    monkeypatch.setattr(topics, "AIOKafkaAdminClient", Admin)
    with pytest.raises(BrokerUnavailable, match="refused to start an admin client: Kafka error 31"):
        asyncio.run(topics._connect("127.0.0.1:9092", wait=30))
    assert len(tries) == 1
