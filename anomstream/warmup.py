"""`anomstream warmup`: start a deployment warm by replaying history into the worker's state.

A daily or weekly rhythm takes days of records to learn. Warm-up scores history (a CSV file or
the input topic's past) with the worker's own scorer, then writes each source's state to the
table's changelog, at the partition the worker restores with that source's input partition, so a
worker started afterwards resumes from it as if it had seen the history itself.

The worker restores its table only at start-up, and a running worker that holds a source saves
its own state over the written one: start (or restart) the worker after writing.
"""

from __future__ import annotations

import asyncio
import csv
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from rich.table import Table

from anomstream.csv_options import load_csv
from detectors.csvdata import TIME_COLUMNS, layout
from detectors.engine import Scorer
from detectors.offline import score_records
from detectors.records import Invalid, Origin, Record
from detectors.seasonal import Seasonal, describe
from detectors.source_state import SourceState
from detectors.timestamps import parse_ts
from streams.clients import start_consumer, start_producer
from streams.codec import Limits, decode
from streams.security import client_security
from streams.settings import Settings
from streams.topics import (
    DLQ_MAX_MESSAGE_BYTES,
    BrokerUnavailable,
    ensure_topics,
    quiet_kafka_client,
)

BATCH = 500
"""Records per micro-batch: scores do not depend on it (see `detectors.engine`)."""
AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


class WarmupError(ValueError):
    """Warm-up cannot go on; the message is one line for the user."""


@dataclass(slots=True)
class SourceSummary:
    """What warm-up did for one source, for the user's table."""

    records: int = 0
    warming_up: bool = True
    """The last record's `warming_up`: True means the worker will still warm up this source."""
    last_ts: str = ""


class Warmed(NamedTuple):
    """Per-source states (the snapshot the worker restores) and what each went through."""

    states: dict[str, SourceState]
    summary: dict[str, SourceSummary]


@dataclass(slots=True)
class History:
    """What was read back from the input topic (the records themselves go to a `Warming`)."""

    records: int = 0
    messages: int = 0
    dead: int = 0
    """Messages or array elements that do not decode: the worker dead-letters them; skipped."""


def parse_since(text: str, now: float | None = None) -> float:
    """Epoch seconds from RFC 3339, epoch seconds, or an age before `now` such as `14d`, `36h`."""
    age = AGE.match(text)
    if age:
        seconds = float(age.group(1)) * UNITS[age.group(2)]
        if seconds <= 0:
            raise ValueError(f"{text!r}: an age must be positive")
        return (time.time() if now is None else now) - seconds
    try:
        value: str | float = float(text)
    except ValueError:
        value = text.strip()
    try:
        return parse_ts(value)[0]
    except Invalid as exc:
        raise ValueError(
            f"{text!r}: expected an RFC 3339 time (2026-11-01T00:00:00Z), epoch seconds or "
            f"an age such as 14d, 36h ({exc.detail})"
        ) from None


def records_from_csv(
    path: Path, since: float | None, source: str | None, reading: Mapping[str, Any]
) -> list[Record]:
    """The file's rows as records, read as `train`, `evaluate` and `detect` read it (`reading`:
    the `csv_options`); `source` names the file's only source when it has no source column
    (default: the file's stem); rows before `since` are left out."""
    if reading.get("row_numbers"):
        raise WarmupError(
            "warm-up learns daily and weekly rhythms from the times: --row-numbers has none; "
            "give the file a time column"
        )
    require_time_column(path, reading.get("time_col"), reading.get("sep"))
    records = load_csv(path, **reading).records()
    named = layout(path, source_col=reading.get("source_col"), sep=reading.get("sep")).source
    if source is not None and named is None:
        records = [replace(r, source=source) for r in records]
    if since is not None:
        records = [r for r in records if r.ts >= since]
    return records


def require_time_column(path: Path, time_col: str | None, sep: str | None = None) -> None:
    """Refuse a file whose first column was taken for time only by default and holds numbers:
    without a timestamp column, warm-up would learn a rhythm on 1970 dates."""
    if time_col is not None:
        return
    spec = layout(path, sep=sep)
    if spec.time.lower() in TIME_COLUMNS:
        return
    with path.open(newline="", encoding="utf-8-sig") as handle:
        first = next(csv.DictReader(handle, delimiter=spec.delimiter), None) or {}
    try:
        float((first.get(spec.time) or "").strip())
    except ValueError:
        return  # text: parsed as a time, or refused by the reader with its line number
    raise WarmupError(
        f"{path} has no timestamp column ({', '.join(TIME_COLUMNS[:3])}): "
        "name it so or pass --time-col"
    )


class Warming:
    """Scores history as it arrives, in micro-batches of `batch`, from fresh states: memory holds
    the states and less than one batch, never the history (weeks of a topic would not fit)."""

    def __init__(self, scorer: Scorer, batch: int = BATCH) -> None:
        self.scorer = scorer
        self.batch = batch
        self.states: dict[str, SourceState] = {}
        self.summary: dict[str, SourceSummary] = {}
        self._pending: list[Record] = []

    @property
    def held(self) -> int:
        """Records read but not scored yet."""
        return len(self._pending)

    def add(self, records: Sequence[Record]) -> None:
        self._pending.extend(records)
        while len(self._pending) >= self.batch:
            cut = _message_boundary(self._pending, self.batch)
            self._score(self._pending[:cut])
            del self._pending[:cut]

    def finish(self) -> Warmed:
        """Score what is left; the states end where a worker that had seen it all would be."""
        self._score(self._pending)
        self._pending = []
        return Warmed(self.states, self.summary)

    def _score(self, records: Sequence[Record]) -> None:
        # one micro-batch, however long: the cut was made at a message boundary
        for res in score_records(self.scorer, records, max(len(records), 1), self.states):
            seen = self.summary.setdefault(res.record.source, SourceSummary())
            seen.records += 1
            seen.warming_up = res.warming_up
            seen.last_ts = res.record.ts_text


def _message_boundary(records: Sequence[Record], at: int) -> int:
    """The first cut at or after `at` that does not split an array message: its items share the
    message's offset, and a part scored after another would be judged against the offset the
    first part applied."""
    while at < len(records):
        before, after = records[at - 1].origin, records[at].origin
        if before is None or after is None or before[:3] != after[:3]:
            break
        at += 1
    return at


def warm_states(scorer: Scorer, records: Sequence[Record], batch: int = BATCH) -> Warmed:
    """Score `records` in order as the stream does (`score_records`), from fresh states."""
    if not records:
        raise WarmupError("no records to warm up from")
    warming = Warming(scorer, batch)
    warming.add(records)
    return warming.finish()


def changelog_partition(source: str, state: SourceState, partitions: int) -> int:
    """The input partition the source's records go to, which is the changelog partition the
    worker restores with it: where they were read from, else where the producers' default
    partitioner (murmur2 of the key, as the Java client) puts them."""
    read = {partition for _, partition in state.applied}  # keyed by (topic, partition)
    if len(read) == 1:
        (read_from,) = read
        if read_from < partitions:
            return read_from
    key = source.encode()
    every = list(range(partitions))
    chosen: int = DefaultPartitioner()(key, every, every)
    return chosen


async def write_states(
    settings: Settings, states: Mapping[str, SourceState], scorer: Scorer
) -> dict[str, int]:
    """Produce every state to the table's changelog and await every acknowledgement.

    Creates the topics first (as the worker does): the changelog needs the input topic's
    partition count. Returns the partition each source went to.
    """
    plan = await ensure_topics(settings, wait=settings.kafka.startup_wait)
    producer = await start_producer(
        settings, max_request_size=DLQ_MAX_MESSAGE_BYTES + 65_536, linger_ms=20
    )
    written: dict[str, int] = {}
    try:
        acks = []
        for source, state in states.items():
            partition = changelog_partition(source, state, plan.partitions)
            blob = orjson.dumps(state.to_json(scorer.suite))
            acks.append(
                await producer.send(plan.changelog, blob, key=source.encode(), partition=partition)
            )
            written[source] = partition
        await asyncio.gather(*acks)
    except KafkaError as exc:
        raise WarmupError(f"writing to {plan.changelog} failed: {exc}") from None
    finally:
        await producer.stop()
    return written


async def warm_from_topic(
    settings: Settings,
    since: float,
    warming: Warming,
    until_end: bool = True,
    idle: float = 30.0,
) -> History:
    """Score the input topic's records from time `since` (message timestamps) into `warming`,
    decoded as the worker decodes them, each with its origin, so the states' applied offsets make
    the worker skip these records later, and with them every record of their sources at a lower
    offset and no later `ts` (history before `since` included: the worker does not score it).
    Scored as read: nothing is held but a batch.

    `until_end`: stop at the end offsets seen at the start (records produced meanwhile are left
    to the worker); otherwise read until no message came for `idle` seconds. With `until_end`,
    `idle` seconds without progress before the end is an error.
    """
    topic = settings.kafka.topic_signals
    limits = settings.limits.limits()
    fetch = max(4 * settings.limits.max_message_bytes, 1_048_576)
    consumer = await start_consumer(
        settings, [], True, max_partition_fetch_bytes=fetch, fetch_max_bytes=fetch
    )
    history = History()
    try:
        parts = [TopicPartition(topic, p) for p in await _partitions(settings, topic)]
        consumer.assign(parts)
        end = await consumer.end_offsets(parts)
        if since > 0:
            found = await consumer.offsets_for_times({tp: int(since * 1000) for tp in parts})
            for tp in parts:
                at = found.get(tp)
                consumer.seek(tp, end[tp] if at is None else at.offset)
        else:
            await consumer.seek_to_beginning(*parts)
        left = {tp for tp in parts if not until_end or await consumer.position(tp) < end[tp]}
        quiet_since = time.monotonic()
        while left:
            batch = await consumer.getmany(*left, timeout_ms=500)
            for tp, messages in batch.items():
                for msg in messages:
                    if until_end and msg.offset >= end[tp]:
                        break
                    origin = Origin(topic, tp.partition, msg.offset)
                    warming.add(_decode_into(history, msg.value, origin, limits))
                if until_end and await consumer.position(tp) >= end[tp]:
                    left.discard(tp)
            if any(batch.values()):
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > idle:
                if not until_end:
                    break
                raise WarmupError(
                    f"no message from {topic} for {idle:.0f} s before its end offsets"
                )
    except KafkaError as exc:
        raise BrokerUnavailable(f"reading {topic} failed: {exc}") from None
    finally:
        await consumer.stop()
    return history


async def _partitions(settings: Settings, topic: str) -> list[int]:
    """The topic's partition numbers, from metadata of all topics: asking for one topic by name
    would make a broker that auto-creates topics create it."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap_servers, **client_security(settings.security)
    )
    try:
        with quiet_kafka_client():
            await admin.start()
        described = await admin.describe_topics()
    finally:
        await admin.close()
    for entry in described:
        if entry["topic"] == topic and entry.get("error_code", 0) == 0 and entry["partitions"]:
            return sorted(p["partition"] for p in entry["partitions"])
    raise WarmupError(f"topic {topic} not found at {settings.kafka.bootstrap_servers}")


def _decode_into(
    history: History, value: bytes | None, origin: Origin, limits: Limits
) -> list[Record]:
    """The message's good records, counted into `history` with what does not decode."""
    history.messages += 1
    try:
        good, bad = decode(value, origin, limits, time.time())
    except Invalid:
        history.dead += 1
        return []
    history.records += len(good)
    history.dead += len(bad)
    return good


def seasonal_periods(state: SourceState) -> dict[str, str] | None:
    """Signal -> the rhythm the seasonal detector confirmed (`1d`, `288 samples`); signals
    without one are left out. None when there is no seasonal state that tells periods."""
    det = state.detectors.get(Seasonal.kind)
    if det is None or not {"period", "unit", "found"} <= det.keys():
        return None
    out: dict[str, str] = {}
    for name, found in zip(state.signals, describe(det), strict=True):
        if found is not None:
            out[name] = _period_text(*found)
    return out


def _period_text(length: float, unit: str) -> str:
    if unit == "samples":
        return f"{length:g} samples"
    for suffix in ("w", "d", "h"):
        size = UNITS[suffix]
        if length >= size and length / size == round(length / size, 2):
            return f"{length / size:g}{suffix}"
    return f"{length:g}s"


def summary_table(warmed: Warmed, partitions: Mapping[str, int] | None = None) -> Table:
    """One row per source: records, warm or not, the seasonal periods it found."""
    periods = {source: seasonal_periods(state) for source, state in warmed.states.items()}
    with_periods = any(p is not None for p in periods.values())
    table = Table(title="warm-up", title_justify="left")
    table.add_column("source")
    table.add_column("records", justify="right")
    table.add_column("until")
    table.add_column("warm")
    if with_periods:
        table.add_column("seasonal period")
    if partitions is not None:
        table.add_column("partition", justify="right")
    for source, seen in sorted(warmed.summary.items()):
        row: list[Any] = [
            source,
            str(seen.records),
            seen.last_ts,
            "[red]no[/]" if seen.warming_up else "[green]yes[/]",
        ]
        if with_periods:
            found = periods.get(source) or {}
            row.append(", ".join(f"{name} {text}" for name, text in found.items()) or "-")
        if partitions is not None:
            row.append(str(partitions.get(source, "")))
        table.add_row(*row)
    return table
