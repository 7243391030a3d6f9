"""Keep each input partition contiguous: never score a record while an earlier one is missing.

Faust can lose records between its consumer and the agent around a (re)start or a rebalance
(seen on Apache Kafka 4.4 with faust-streaming 0.15.3: a restarted worker skipped a few hundred
records per partition, and its gap bookkeeping then let it commit past them; faust-streaming
issues #216 and #596 describe such races). Scoring past a hole would corrupt the detectors'
state and lose those records for good, so every event is checked against the next offset
expected for its partition (for the first one after an assignment: the group's committed offset,
or the partition's first offset for a new group):

- an earlier offset (a re-read) passes: the source state skips what it has applied;
- a later offset is a hole. The missing records are read straight from the broker with a small
  probe consumer and scored first, in order; if the broker has none (transaction markers,
  compaction), the hole is real. Either way Faust is told about the hole only after the batch is
  saved, so its commit never runs ahead of the state.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from streams.structs import TP, Admitted, InMessage

log = logging.getLogger(__name__)


class Offsets(Protocol):
    """What the guard needs from the broker (`KafkaOffsets` below)."""

    async def committed(self, tp: TP) -> int | None:
        """Where the group resumes `tp`: its committed offset, or, when nothing was committed,
        the partition's first stored offset (the worker reads from the earliest); None when
        that is unknown."""
        ...

    async def fetch(self, tp: TP, start: int, stop: int) -> list[InMessage]:
        """The records stored at offsets [start, stop) of `tp`, in order."""
        ...


class GapGuard:
    """Admits events in offset order per partition, filling holes from the broker."""

    def __init__(self, offsets: Offsets) -> None:
        self._offsets = offsets
        self._expected: dict[TP, int] = {}
        self.refilled = 0
        """Records read from the broker because Faust never delivered them."""

    def forget(self, tps: Sequence[TP]) -> None:
        """Partitions revoked: whoever gets them next starts from the committed offset."""
        for tp in tps:
            self._expected.pop(tp, None)

    async def admit(self, events: Sequence[Any]) -> Admitted:
        out = Admitted()
        for event in events:
            msg = event.message
            tp, offset = msg.tp, msg.offset
            expected = self._expected.get(tp)
            if expected is None:
                expected = await self._offsets.committed(tp)
            if expected is not None and offset > expected:
                missing = await self._offsets.fetch(tp, expected, offset)
                if missing:
                    log.warning(
                        "%d records of %s (offsets %d..%d) never reached the agent; "
                        "read them from the broker",
                        len(missing),
                        tp,
                        expected,
                        offset - 1,
                    )
                    self.refilled += len(missing)
                    out.messages.extend(missing)
                out.holes.append((tp, expected, offset - 1))
            out.messages.append(
                InMessage(msg.topic, msg.partition, offset, event.key, event.value, msg.timestamp)
            )
            out.events.append(event)
            if expected is None or offset >= expected:
                self._expected[tp] = offset + 1
        return out


class KafkaOffsets:
    """`Offsets` from the broker: an admin client and a group-less probe consumer."""

    def __init__(self, bootstrap: str, group: str) -> None:
        self._bootstrap = bootstrap
        self._group = group
        self._admin: Any = None
        self._probe: Any = None

    async def committed(self, tp: TP) -> int | None:
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.structs import TopicPartition

        if self._admin is None:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
            await self._admin.start()
        key = TopicPartition(tp.topic, tp.partition)
        found = await self._admin.list_consumer_group_offsets(self._group, partitions=[key])
        meta = found.get(key)
        if meta is not None and meta.offset >= 0:
            return int(meta.offset)
        # A new group: Faust was seen to hand a fresh worker nothing before its start (while it
        # restored a non-empty changelog), and then later records only. Expect the first one.
        first = await (await self._consumer()).beginning_offsets([key])
        return int(first[key]) if key in first else None

    async def _consumer(self) -> Any:
        from aiokafka import AIOKafkaConsumer

        if self._probe is None:
            self._probe = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                group_id=None,
                enable_auto_commit=False,
                fetch_max_wait_ms=100,
            )
            await self._probe.start()
        return self._probe

    async def fetch(self, tp: TP, start: int, stop: int) -> list[InMessage]:
        from aiokafka.structs import TopicPartition

        probe = await self._consumer()
        key = TopicPartition(tp.topic, tp.partition)
        probe.assign([key])
        probe.seek(key, start)
        out: list[InMessage] = []
        while True:
            batch = await probe.getmany(key, timeout_ms=2000)
            records = batch.get(key, [])
            if not records:
                return out  # nothing more stored below `stop`: the rest of the hole is real
            for r in records:
                if r.offset >= stop:
                    return out
                stamp = r.timestamp / 1000.0 if r.timestamp is not None else None
                out.append(InMessage(tp.topic, tp.partition, r.offset, r.key, r.value, stamp))

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
        if self._probe is not None:
            await self._probe.stop()
