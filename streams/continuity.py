"""Keep each input partition contiguous: never score a record while an earlier one is missing.

Faust can lose records between its consumer and the agent around a (re)start or a rebalance
(seen on Apache Kafka 4.4 with faust-streaming 0.15.3: a restarted worker skipped a few hundred
records per partition, and its gap bookkeeping then let it commit past them; faust-streaming
issues #216 and #596 describe such races). Scoring past a hole would corrupt the detectors'
state and lose those records for good, so every event is checked against the next offset
expected for its partition (for the first one after an assignment: the group's committed offset,
or the partition's first offset for a new group):

- an earlier offset (a re-read) passes: the source state skips what it has applied;
- a later offset is a hole. The missing records are read straight from the broker by offset
  with a small probe consumer, retried until the hole is covered (the probe's position reaches
  the hole's end) or a deadline passes (then the worker stops, and a restart replays), and
  scored first, in order. Offsets the broker holds no record for are skipped, each hole's
  skipped offsets logged and counted (`anomstream_gap_offsets_skipped_total`): `gone` below the
  partition's first stored offset (retention, compaction of the head), `absent` above it
  (compacted away, transaction markers). Either way Faust is told about the hole only after the
  batch is saved, so its commit never runs ahead of the state.
- a quiet partition whose consumer has read past the last record the agent got (Faust dropped
  what it fetched across a rebalance, and nothing comes after) is found by `tails`, looked at
  every few seconds, and its missing records read the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from streams.metrics import Metrics
from streams.structs import TP, Admitted, InMessage

log = logging.getLogger(__name__)

REFILL_DEADLINE = 30.0
"""Seconds to keep reading a hole's records from the broker before giving up (and exiting)."""


TAIL_MOST = 20_000
"""Records of one partition `GapGuard.tails` reads at a time (the rest at its next looks)."""


class HoleNotReadable(RuntimeError):
    """The broker neither delivered a hole's records nor said they are gone, before the deadline."""


class Refill(NamedTuple):
    """What the broker holds of a hole: its records, and the partition's first stored offset
    when they were read (the offsets below it are gone: retention, compaction)."""

    messages: list[InMessage]
    first: int


class Offsets(Protocol):
    """What the guard needs from the broker (`KafkaOffsets` below)."""

    async def committed(self, tp: TP) -> int | None:
        """Where the group resumes `tp`: its committed offset, or, when nothing was committed,
        the partition's first stored offset (the worker reads from the earliest); None when
        that is unknown."""
        ...

    async def fetch(self, tp: TP, start: int, stop: int) -> Refill:
        """The records stored at offsets [start, stop) of `tp`, in order; raises
        `HoleNotReadable` when the broker cannot tell."""
        ...


class GapGuard:
    """Admits events in offset order per partition, filling holes from the broker."""

    def __init__(self, offsets: Offsets, metrics: Metrics | None = None) -> None:
        self._offsets = offsets
        self._metrics = metrics
        self._expected: dict[TP, int] = {}
        self._still: dict[TP, int] = {}
        """Per partition, its expected offset at the last look for lost tails (`tails`)."""
        self.refilled = 0
        """Records read from the broker because Faust never delivered them."""
        self.skipped: dict[str, int] = {}
        """Offsets the broker holds no record for, by reason (`gone`, `absent`)."""

    def forget(self, tps: Sequence[TP]) -> None:
        """Partitions revoked: whoever gets them next starts from the committed offset."""
        for tp in tps:
            self._expected.pop(tp, None)
            self._still.pop(tp, None)

    async def admit(self, events: Sequence[Any]) -> Admitted:
        out = Admitted()
        for event in events:
            msg = event.message
            tp, offset = msg.tp, msg.offset
            expected = self._expected.get(tp)
            if expected is None:
                expected = await self._offsets.committed(tp)
            if expected is not None and offset > expected:
                await self._fill(tp, expected, offset, out, "never reached the agent")
            out.messages.append(
                InMessage(msg.topic, msg.partition, offset, event.key, event.value, msg.timestamp)
            )
            out.events.append(event)
            # a re-read below the expected offset keeps expecting it (and asks the broker once)
            self._expected[tp] = offset + 1 if expected is None else max(expected, offset + 1)
        return out

    async def tails(self, ends: Mapping[TP, int]) -> Admitted:
        """The records at the end of quiet partitions that Faust fetched but never delivered.

        faust 0.15.3 `Consumer.getmany` drops the records it fetched when the generation
        changes under it, after the consumer's position moved past them and, in a rebalance
        that follows closely, after the seek to the committed offsets: no later record of a
        partition that went quiet reveals the hole. `ends`: per assigned input partition, the
        high watermark the consumer last saw. A partition whose expected offset has not moved
        since the last call and lies below its end is read from the broker up to it."""
        out = Admitted()
        still: dict[TP, int] = {}
        moved: dict[TP, int] = {}
        for tp, end in ends.items():
            expected = self._expected.get(tp)
            if expected is None:
                expected = await self._offsets.committed(tp)
                if expected is None:
                    continue
                moved[tp] = expected
            if end > expected and self._still.get(tp) == expected:
                stop = min(end, expected + TAIL_MOST)
                await self._fill(
                    tp, expected, stop, out, "were fetched but never reached the agent"
                )
                moved[tp] = stop
            else:
                still[tp] = expected
        # only now, all read: a broker error above leaves every partition as it was
        self._expected.update(moved)
        self._still = still
        return out

    async def _fill(self, tp: TP, start: int, stop: int, out: Admitted, why: str) -> None:
        """Read the hole [start, stop) of `tp` from the broker into `out`, first."""
        refill = await self._offsets.fetch(tp, start, stop)
        missing = refill.messages
        if missing:
            log.warning(
                "%d records of %s (offsets %d..%d) %s; read them from the broker",
                len(missing),
                tp,
                start,
                stop - 1,
                why,
            )
            self.refilled += len(missing)
            if self._metrics is not None:
                self._metrics.gap_refilled.inc(len(missing))
            out.messages.extend(missing)
        self._count_skipped(tp, start, stop, refill)
        out.holes.append((tp, start, stop - 1))

    def _count_skipped(self, tp: TP, start: int, stop: int, refill: Refill) -> None:
        """Log and count the offsets of [start, stop) the broker holds no record for."""
        found = {m.offset for m in refill.messages}
        gone = max(min(refill.first, stop) - start, 0)
        absent = [o for o in range(max(start, refill.first), stop) if o not in found]
        if gone:
            log.warning(
                "offsets %d..%d of %s are gone from the broker (retention or compaction): "
                "%d records skipped unscored",
                start,
                start + gone - 1,
                tp,
                gone,
            )
        if absent:
            log.warning(
                "%d offsets of %s between %d and %d hold no record (compacted, or transaction "
                "markers): skipped %s",
                len(absent),
                tp,
                start,
                stop - 1,
                _ranges(absent),
            )
        for reason, n in (("gone", gone), ("absent", len(absent))):
            if n:
                self.skipped[reason] = self.skipped.get(reason, 0) + n
                if self._metrics is not None:
                    self._metrics.gap_skipped.labels(reason=reason).inc(n)


def _ranges(offsets: list[int], most: int = 20) -> str:
    """`3..5, 9` for [3, 4, 5, 9], at most `most` ranges.

    >>> _ranges([3, 4, 5, 9])
    '3..5, 9'
    """
    spans: list[list[int]] = []
    for o in offsets:
        if spans and spans[-1][1] == o - 1:
            spans[-1][1] = o
        else:
            spans.append([o, o])
    text = ", ".join(f"{a}..{b}" if a != b else f"{a}" for a, b in spans[:most])
    return text + (f" and {len(spans) - most} more ranges" if len(spans) > most else "")


class KafkaOffsets:
    """`Offsets` from the broker: an admin client and a group-less probe consumer; `client`
    holds the clients' TLS/SASL options (`streams.security.client_security`)."""

    def __init__(
        self, bootstrap: str, group: str, deadline: float = REFILL_DEADLINE, **client: Any
    ) -> None:
        self._bootstrap = bootstrap
        self._client = client
        self._group = group
        self._deadline = deadline
        self._admin: Any = None
        self._probe: Any = None

    async def committed(self, tp: TP) -> int | None:
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.structs import TopicPartition

        if self._admin is None:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, **self._client)
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
                # an offset retention removed while we read: go on from the first stored one
                auto_offset_reset="earliest",
                **self._client,
            )
            await self._probe.start()
        return self._probe

    async def fetch(self, tp: TP, start: int, stop: int) -> Refill:
        """Read [start, stop) by offset until the probe's position reaches `stop`: an empty
        answer is a slow broker, not proof of a hole (compacted offsets and transaction
        markers move the position on without records)."""
        from aiokafka.structs import TopicPartition

        probe = await self._consumer()
        key = TopicPartition(tp.topic, tp.partition)
        probe.assign([key])
        first = int((await probe.beginning_offsets([key]))[key])
        out: list[InMessage] = []
        if first >= stop:
            return Refill(out, first)
        probe.seek(key, max(start, first))
        deadline = time.monotonic() + self._deadline
        while True:
            batch = await probe.getmany(key, timeout_ms=1000)
            for r in batch.get(key, []):
                if r.offset >= stop:
                    return Refill(out, first)
                if r.offset >= start:
                    stamp = r.timestamp / 1000.0 if r.timestamp is not None else None
                    out.append(InMessage(tp.topic, tp.partition, r.offset, r.key, r.value, stamp))
            if await probe.position(key) >= stop:
                return Refill(out, first)
            if time.monotonic() > deadline:
                raise HoleNotReadable(
                    f"offsets {start}..{stop - 1} of {tp}: the broker returned "
                    f"{len(out)} records and no more within {self._deadline:.0f} s"
                )

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
        if self._probe is not None:
            await self._probe.stop()
