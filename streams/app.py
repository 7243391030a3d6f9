"""The Faust app: one agent on the input topic, a changelog-backed table of per-source state.

Thin glue: Faust gives consumer-group membership, partition assignment, table recovery from the
changelog and offset commits. The agent takes micro-batches of raw events (without Faust acking
them), checks their offsets are contiguous (`streams.continuity`), hands them to the processor,
and leaves acking to `streams.state`, after the state that covers them is saved. Output
messages go through our own aiokafka producer (acks=all, idempotence a setting). What this needs
of Faust beyond its documented API is in `streams.faust_compat`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Sequence
from typing import Any, NoReturn

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from mode import Service

from detectors.models import ModelBook
from streams.continuity import GapGuard, KafkaOffsets
from streams.faust_compat import (
    FaustAcker,
    RecoveryWatch,
    TableStore,
    batches,
    save_while_draining,
)
from streams.metrics import Metrics
from streams.processor import Processor
from streams.scoring import build_scorer
from streams.security import broker_credentials, client_security
from streams.settings import Settings
from streams.state import SourceStates
from streams.status import STATUS_INTERVAL, StatusReporter
from streams.structs import Admitted
from streams.tails import RECOVERY_STALL, TAIL_CHECK, LostTails
from streams.topics import (
    CHANGELOG_MAX_MESSAGE_BYTES,
    DLQ_MAX_MESSAGE_BYTES,
    TABLE_NAME,
    TopicPlan,
)

log = logging.getLogger(__name__)

PLACEMENT_CACHE = 100_000
"""Keys whose partition is remembered per topic (sources come back; murmur2 is pure Python)."""


class OutputProducer(Service):
    """aiokafka producer for scores, events and dead letters, started and stopped with the app."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._ready = asyncio.Event()
        self._partitioner = DefaultPartitioner()
        self._placement: dict[tuple[str, int], dict[bytes, int]] = {}
        """(topic, partition count) -> key -> partition, as the default partitioner places it."""

    async def on_start(self) -> None:
        s = self._settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka.bootstrap_servers,
            acks="all",
            enable_idempotence=s.kafka.producer_idempotence,
            linger_ms=s.kafka.producer_linger_ms,
            max_batch_size=1_048_576,
            max_request_size=DLQ_MAX_MESSAGE_BYTES + 65_536,
            client_id=f"{s.kafka.app_id}-output",
            **client_security(s.security),
        )
        await self._producer.start()
        self._ready.set()

    async def on_stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None
    ) -> Awaitable[Any]:
        if not self._ready.is_set():  # Faust may deliver events before extra services started
            await self._ready.wait()
        assert self._producer is not None
        ack: Awaitable[Any] = await self._producer.send(
            topic, value=value, key=key, headers=headers
        )
        return ack

    async def send_many(
        self, topic: str, messages: Sequence[tuple[bytes, bytes]]
    ) -> list[Awaitable[Any]]:
        """Keyed messages as one record batch per partition, placed as `send` would place them:
        a future per batch instead of per message (sending one by one, with a pure-Python
        murmur2 per key, was a large share of the worker's time: docs/benchmarks.md)."""
        if not self._ready.is_set():
            await self._ready.wait()
        producer = self._producer
        assert producer is not None
        partitions = sorted(await producer.partitions_for(topic))
        placed = self._placement.setdefault((topic, len(partitions)), {})
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for key, value in messages:
            partition = placed.get(key)
            if partition is None:
                if len(placed) >= PLACEMENT_CACHE:
                    placed.clear()
                partition = placed[key] = self._partitioner(key, partitions, partitions)
            by_partition.setdefault(partition, []).append((key, value))
        acks: list[Awaitable[Any]] = []
        for partition, items in by_partition.items():
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is not None:
                    continue
                if batch.record_count():  # full: send it, start the next one with this message
                    acks.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None) is not None:
                        continue
                # larger than a batch on its own: the producer's own path (and its size check)
                acks.append(await producer.send(topic, value=value, key=key, partition=partition))
                batch = producer.create_batch()
            if batch.record_count():
                acks.append(await producer.send_batch(batch, topic, partition=partition))
        return acks


EXIT_FATAL = 3


def fatal(message: str) -> NoReturn:
    """Stop the process at once, without acking or committing anything more.

    Faust logs a crashed agent and keeps the worker alive, which would leave its partitions
    unprocessed in silence. Exiting instead lets a supervisor restart the worker, which replays
    the batch from the committed offsets against the saved state: nothing is lost.
    """
    log.critical(message, exc_info=True)
    logging.shutdown()
    os._exit(EXIT_FATAL)


def group_instance_id(settings: Settings) -> str | None:
    """The static group member id (`group.instance.id`), or None for dynamic membership.

    `auto`: host name, app id and a hash of the data dir, so a worker restarted on the same host
    with the same settings is the same member (Kafka hands it its partitions back at once,
    instead of after the dead member's session timeout), while two workers on one host, with
    their own data dirs, are two members.
    """
    given = settings.kafka.group_instance_id.strip()
    if given != "auto":
        return given or None
    where = os.path.abspath(settings.state.data_dir).encode()
    return f"{socket.gethostname()}-{settings.kafka.app_id}-{hashlib.sha1(where).hexdigest()[:8]}"


def build_app(
    settings: Settings, topics: TopicPlan, metrics: Metrics, notes: Sequence[str] = ()
) -> faust.App:
    """The Faust app for these settings; `topics` carries the input topic's real partitions,
    `notes` start-up warnings that `/status` repeats."""
    os.makedirs(settings.state.data_dir, exist_ok=True)
    app = faust.App(
        settings.kafka.app_id,
        # Faust lets its own unprefixed variables (BROKER_URL, PROCESSING_GUARANTEE, ...) win
        # over what is passed here: only ANOMSTREAM_* settings may configure the worker.
        env={},
        broker=settings.kafka.broker,
        broker_credentials=broker_credentials(settings.security),
        datadir=str(settings.state.data_dir),
        web_enabled=False,
        topic_partitions=topics.partitions,
        topic_replication_factor=topics.replication,
        consumer_auto_offset_reset="earliest",
        # Fetch whole messages well beyond the size limit, so an oversized one is read and
        # dead-lettered instead of stalling its partition.
        consumer_max_fetch_size=max(4 * settings.limits.max_message_bytes, 1_048_576),
        broker_session_timeout=settings.kafka.broker_session_timeout,
        broker_heartbeat_interval=settings.kafka.broker_heartbeat_interval,
        broker_rebalance_timeout=settings.kafka.broker_rebalance_timeout,
        broker_commit_interval=settings.kafka.broker_commit_interval,
        consumer_group_instance_id=group_instance_id(settings),
        producer_acks=-1,
        # Faust's producer writes only the changelog: sized for the largest state allowed.
        producer_max_request_size=CHANGELOG_MAX_MESSAGE_BYTES,
        producer_linger_ms=settings.kafka.producer_linger_ms,
        stream_wait_empty=True,
    )
    source = app.topic(
        topics.signals,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=topics.partitions,
    )
    table = app.Table(
        TABLE_NAME,
        partitions=topics.partitions,
        key_type=bytes,  # bytes -> Faust's "raw" serializer for the changelog, both ways
        value_type=bytes,
    )
    output = OutputProducer(settings)
    app.service(output)  # type: ignore[arg-type]
    models = ModelBook(settings.serving.models_dir)
    scorer = build_scorer(settings, models)
    scorer.prepare()
    states = SourceStates(
        scorer,
        TableStore(table),
        metrics,
        settings.state.state_flush_interval,
        settings.state.source_ttl,
        max_source_signals=settings.state.max_source_signals,
        save_interval=settings.state.state_save_interval,
        save_records=settings.state.state_save_records,
        max_sources=settings.state.max_sources,
    )
    decoder, schemas = settings.input.decoding(
        lambda outcome: metrics.schema_fetches.labels(outcome=outcome).inc()
    )
    processor = Processor(
        scorer,
        states,
        output,
        topics,
        settings.limits.limits(),
        metrics,
        max_batch_records=settings.kafka.max_batch_records,
        decoder=decoder,
        scores=settings.scoring.scores,
        schemas=schemas,
    )
    metrics.threshold.set(settings.scoring.threshold)
    status = StatusReporter(settings, states, models, metrics, notes)

    def publish_models() -> None:
        """The models serving, and the directories that do not (refused at load, or
        quarantined when their inference failed in a batch: the worker scores on without)."""
        metrics.set_models([(m.spec.name, m.spec.version) for m in models.models.values()])
        metrics.report_models(models.errors, models.quarantined)
        status.note_models()

    publish_models()
    status.publish()

    @app.timer(STATUS_INTERVAL)  # type: ignore[untyped-decorator]
    async def publish_status() -> None:
        """`/status` serves the document made here, in the loop: the HTTP thread never reads
        the live state."""
        status.publish()

    @app.timer(settings.serving.models_refresh)  # type: ignore[untyped-decorator]
    async def refresh_models() -> None:
        """New or retrained models are swapped in between micro-batches: no record is lost."""
        async with states.lock:
            await asyncio.to_thread(models.refresh)
        publish_models()  # also when only a refusal changed: /readyz names it

    @app.task  # type: ignore[untyped-decorator]
    async def mark_ready() -> None:
        """Faust starts app tasks after table recovery finished."""
        metrics.ready.set(1)

    offsets = KafkaOffsets(
        settings.kafka.bootstrap_servers,
        settings.kafka.app_id,
        **client_security(settings.security),
    )
    guard = GapGuard(offsets, metrics)
    store = states.store
    assert isinstance(store, TableStore)

    recovery = RecoveryWatch(app, RECOVERY_STALL, time.monotonic)
    tails = LostTails(guard, recovery, states, processor, topics.signals)

    @app.timer(TAIL_CHECK)  # type: ignore[untyped-decorator]
    async def find_lost_tails() -> None:
        """Records Faust dropped at the end of a quiet partition, scored from the broker."""
        try:
            await tails.look(app.consumer)
        except Exception:
            fatal("cannot read the records Faust lost; exiting so that a restart replays them")

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def save_revoked(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        """Not ready until the next assignment is restored; what was scored is saved now
        (Faust revokes every partition at each rebalance, and reassigns some right after)."""
        metrics.ready.set(0)
        states.restoring = True
        guard.forget(list(revoked))
        await save_now()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def forget_moved(sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        """The sources of input partitions that moved to another worker leave this one."""
        kept = {tp.partition for tp in assigned if tp.topic == topics.signals}
        status.partitions = sorted(kept)
        status.publish()  # not a second late: `/readyz` may say ready at once
        try:
            if await keep_partitions(states, store, kept):
                metrics.rebalances.inc()
        except Exception:
            fatal("cannot save the state of revoked partitions; exiting")

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def restored(sender: Any, **kwargs: Any) -> None:
        """Faust restored the tables of the new assignment (sent before streams resume): their
        sources count as held (the source cap), with their saved last-seen times."""
        states.adopt()
        states.restoring = False
        metrics.ready.set(1)

    async def save_now() -> None:
        """Everything unsaved, before a rebalance and while a stop drains: nothing scored may
        be left to a replay by another worker, or by this one after a clean stop."""
        try:
            async with states.lock:
                await states.checkpoint(everything=True)
        except Exception:
            fatal("cannot save the detector state; exiting so that a restart replays")

    @app.timer(settings.state.state_flush_interval)  # type: ignore[untyped-decorator]
    async def save_when_idle() -> None:
        """A quiet stream's last records get saved and committed too."""
        try:
            await states.tick()
        except Exception:
            fatal("cannot save the detector state; exiting so that a restart replays")

    @app.agent(source, name="score")
    async def score(stream: Any) -> None:  # faust.Stream: noack_take is not on StreamT
        states.acker = FaustAcker(app, stream)
        save_while_draining(app, save_now)
        async for events in batches(stream, settings.kafka.batch_size, settings.kafka.batch_within):
            try:
                async with states.lock:
                    admitted = await guard.admit(events)
                    quarantined = sum(models.quarantined.values())
                    await processor.process(admitted.messages)
                    await states.done(admitted.events, admitted.holes)
                if sum(models.quarantined.values()) != quarantined:
                    publish_models()
                report_lag(app, metrics, admitted)
            except Exception:  # a bug, or the broker gone past the producer's retries
                fatal("cannot process a batch; exiting so that a restart replays it")

    return app


async def keep_partitions(states: SourceStates, store: TableStore, partitions: set[int]) -> int:
    """Forget the sources of every input partition but `partitions` (this worker's new
    assignment): what is dirty is saved first (under the lock), then they are dropped from
    memory without tombstones; their new owner restores them from the changelog. Without this,
    this worker's TTL eviction would later delete them from partitions it no longer owns."""
    async with states.lock:
        await states.checkpoint(everything=True)
        gone = [key.decode() for key in store.keep_partitions(partitions)]
        states.forget(gone)
    if gone:
        log.info(
            "assigned partitions %s: %d sources left this worker", sorted(partitions), len(gone)
        )
    return len(gone)


def report_lag(app: faust.App, metrics: Metrics, admitted: Admitted) -> None:
    """Consumer lag per input partition: the broker's high watermark minus the next offset.

    (Wrong on Tansu, whose high watermarks are too low: see docs/operations.md.)
    """
    consumer: Any = app.consumer
    last: dict[Any, int] = {}
    for event in admitted.events:
        tp = event.message.tp
        last[tp] = max(last.get(tp, -1), event.message.offset)
    for tp, offset in last.items():
        highwater = consumer.highwater(tp)
        if highwater is not None:
            metrics.observe_lag(tp.partition, max(highwater - offset - 1, 0))
