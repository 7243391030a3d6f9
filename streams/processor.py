"""One micro-batch, top to bottom: decode+validate -> per-source state -> score -> publish.

The batch is scored against the states as they were (`streams.state` loads them) and its score
messages, events, episode messages and dead letters are published and their acknowledgements
awaited before the new states are handed back to `streams.state` as changed: a state is never
saved ahead of the outputs it produced (docs/delivery.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from detectors.engine import BatchOutcome, Scorer
from detectors.episodes import episode_bytes
from detectors.fusion import severity
from detectors.messages import ScoreMode, anomaly_event, compact_score_bytes, score_bytes
from detectors.records import Invalid, Origin, Record
from detectors.results import Scored
from detectors.source_state import SourceState
from streams.codec import Limits, decode
from streams.formats import Decoder
from streams.formats.registry import SchemaFetcher
from streams.metrics import Metrics
from streams.state import SourceStates
from streams.structs import BatchReport, DeadLetter, InMessage, Sink
from streams.topics import MESSAGE_OVERHEAD, TopicPlan

MAX_BATCH_RECORDS = 5_000
"""Records scored at a time (setting `max_batch_records`): a batch of more (`batch_size` counts
messages, and one array message may hold ~18k records) is scored in chunks of at most this
many, in record order, the event loop running between them (heartbeats, acknowledgements)."""


class Processor:
    """Scores micro-batches of input messages against the states `states` keeps."""

    def __init__(
        self,
        scorer: Scorer,
        states: SourceStates,
        sink: Sink,
        topics: TopicPlan,
        limits: Limits,
        metrics: Metrics,
        model: str | None = None,
        wall: Callable[[], float] = time.time,
        max_batch_records: int = MAX_BATCH_RECORDS,
        decoder: Decoder = decode,
        scores: ScoreMode = "full",
        schemas: SchemaFetcher | None = None,
    ) -> None:
        self.scorer = scorer
        self.states = states
        self.sink = sink
        self.topics = topics
        self.limits = limits
        self.metrics = metrics
        self.model = model
        self.wall = wall
        """The clock a record's `ts` may not run ahead of by more than `limits.max_future`."""
        self.max_batch_records = max_batch_records
        self.decoder = decoder
        """The input format's (`streams.formats.decoder_for`)."""
        self.scores = scores
        """Which score messages go out (setting `scores`): full, compact, anomalous or off."""
        self.schemas = schemas
        """For Avro: fetches the writer schemas a batch needs before it is decoded."""

    async def process(self, messages: Sequence[InMessage]) -> BatchReport:
        started = time.perf_counter()
        if self.schemas is not None:
            await self.schemas.ensure(msg.value for msg in messages)
        records, dead = self._decode(messages)
        states, capped = self.states.load(records)
        if capped:  # new sources beyond the cap: dead letters, no state
            dead.extend(self.states.letters(capped, messages))
            turned_away = {rec.source for rec, _ in capped}
            records = [rec for rec in records if rec.source not in turned_away]
        outcome = await self._score(records, states)
        results = outcome.results
        rejected = [(records[i], error) for i, error in outcome.rejected]
        dead.extend(self.states.letters(rejected, messages))

        pending: list[Awaitable[Any]] = []
        report = BatchReport(dead=len(dead))
        scored = [res for res in results if res is not None]  # None: a replay, or refused
        cfg = self.scorer.config
        for res in scored:
            if res.alert:
                event = orjson.dumps(anomaly_event(res, cfg, self.model))
                key = res.record.source.encode()
                pending.append(await self.sink.send(self.topics.anomalies, key, event, None))
                report.events += 1
        if self.topics.episodes:
            told = episode_bytes(scored)
            if told:
                pending.extend(await self.sink.send_many(self.topics.episodes, told))
        outputs = self.score_outputs(scored)
        if outputs:
            pending.extend(await self.sink.send_many(self.topics.scores, outputs))
        for letter in dead:
            dlq_key, value, headers = fit_dead_letter(
                letter.message.key, letter.value, _dlq_headers(letter), self.topics.dlq_max_bytes
            )
            if value is not letter.value:
                self.metrics.dead_letters_truncated.inc()
            pending.append(await self.sink.send(self.topics.dlq, dlq_key, value, headers))
        await asyncio.gather(*pending)
        self.states.changed([res.record for res in scored], self.states.old(messages))

        report.scored = len(scored)
        report.replayed = len(results) - len(scored) - len(outcome.rejected)
        self.metrics.observe_batch(
            scored=(
                (r.record.source, r.score, r.is_anomaly, r.warming_up, r.record.ts) for r in scored
            ),
            dead=(letter.error.reason for letter in dead),
            replayed=report.replayed,
            events=(
                (
                    ("score", severity(r.p, cfg.target_fap))
                    if r.score_alert
                    else ("rule", r.rule_severity)
                )
                for r in scored
                if r.alert
            ),
            appended=(m.timestamp for m in messages if m.timestamp is not None),
            now=time.time(),
            seconds=time.perf_counter() - started,
        )
        self.metrics.observe_episodes(
            open_now={source: state.episode is not None for source, state in states.items()},
            closed=(
                m["severity"]
                for r in scored
                if (m := r.episode_message) is not None and m["status"] == "close"
            ),
        )
        return report

    def score_outputs(self, scored: Sequence[Scored]) -> list[tuple[bytes, bytes]]:
        """The batch's score messages (key, value) as `scores` asks (docs/messages.md): a user
        sizing the topic keeps all, a compact form, only anomalous or warming records, or none.
        Events and dead letters do not depend on it."""
        mode = self.scores
        if mode == "off":
            return []
        if mode == "anomalous":
            scored = [res for res in scored if res.is_anomaly or res.warming_up]
        if mode == "compact":
            return compact_score_bytes(scored, self.scorer.config)
        return score_bytes(scored, self.scorer.config, self.model)

    async def _score(
        self, records: Sequence[Record], states: dict[str, SourceState]
    ) -> BatchOutcome:
        """The batch scored at once, or in chunks of `max_batch_records` in record order with
        the event loop running between them: the same results either way (`Scorer.chunks`)."""
        size = self.max_batch_records
        if len(records) <= size:
            return self.states.score(records, states)
        results: list[Scored | None] = []
        rejected: list[tuple[int, Invalid]] = []
        resets: dict[tuple[str, int], int] = {}
        with self.scorer.chunks():
            for start in range(0, len(records), size):
                if start:
                    await asyncio.sleep(0)
                part = self.states.score(records[start : start + size], states)
                results.extend(part.results)
                rejected.extend((start + i, error) for i, error in part.rejected)
                for key, n in part.resets.items():
                    resets[key] = resets.get(key, 0) + n
        return BatchOutcome(results, rejected, resets)

    def _decode(self, messages: Sequence[InMessage]) -> tuple[list[Record], list[DeadLetter]]:
        records: list[Record] = []
        dead: list[DeadLetter] = []
        now = self.wall()
        mismatched = 0
        for msg in messages:
            origin = Origin(msg.topic, msg.partition, msg.offset)
            try:
                # by the message's own time where it has one: a replay judges it alike
                stamp = now if msg.timestamp is None else msg.timestamp
                good, bad = self.decoder(msg.value, origin, self.limits, stamp)
            except Invalid as exc:
                dead.append(DeadLetter(msg, msg.value or b"", exc, None))
                continue
            records.extend(good)
            if len(good) == 1:  # the common case, without a generator per message
                mismatched += msg.key is None or good[0].source.encode() != msg.key
            elif good:
                key = msg.key.decode("utf-8", "replace") if msg.key is not None else None
                mismatched += sum(1 for rec in good if rec.source != key)
            for item in bad:
                raw = item.element if type(item.element) is bytes else orjson.dumps(item.element)
                dead.append(DeadLetter(msg, raw, item.error, item.index))  # a bad line: its bytes
        if mismatched:
            # Not re-keyed: such a record is scored with the state kept on its key's partition,
            # so one source under several keys (or none) has several states (docs/messages.md).
            self.metrics.key_mismatch.inc(mismatched)
        return records, dead


def _dlq_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    msg, index = letter.message, letter.index
    headers = [
        ("error", str(letter.error).encode()),
        ("source_topic", msg.topic.encode()),
        ("source_partition", str(msg.partition).encode()),
        ("source_offset", str(msg.offset).encode()),
    ]
    if index is not None:
        headers.append(("record_index", str(index).encode()))
    return headers


def fit_dead_letter(
    key: bytes | None, value: bytes, headers: list[tuple[str, bytes]], limit: int
) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """The dead letter as sent (key, value, headers): whole if it fits the DLQ topic's `limit`,
    else a prefix of the value with the original's size and sha256 in headers (a letter the
    topic refuses would stop the worker). A key and headers that would take more than half of
    a small limit on their own (a huge input key, a long error detail) are cut to prefixes too.

    >>> key, value, headers = fit_dead_letter(b"k", b"x" * 10_000, [], 5_000)
    >>> len(value) < 5_000, dict(headers)["original_size"]
    (True, b'10000')
    """
    room = limit - min(MESSAGE_OVERHEAD, limit // 4)
    used = len(key or b"") + _size(headers)
    if len(value) + used <= room:
        return key, value, headers
    size = str(len(value)).encode()
    digest = hashlib.sha256(value).hexdigest().encode()
    extra = [("original_size", size), ("original_sha256", digest)]
    share = room // 2 - _size(extra)  # what the key and the other headers may take
    if used > share:
        cap = max((share - sum(len(name) for name, _ in headers)) // (len(headers) + 1), 0)
        key = None if key is None else key[:cap]
        headers = [(name, v[:cap]) for name, v in headers]
    headers = [*headers, *extra]
    return key, value[: max(room - len(key or b"") - _size(headers), 0)], headers


def _size(headers: list[tuple[str, bytes]]) -> int:
    return sum(len(name) + len(v) for name, v in headers)
