"""Checkpoints: save the detector state, then let Faust commit the input it covers.

Holding scored-but-unsaved batches is safe (a crash replays them to identical messages) and
bounded by the flush interval; it spares writing a busy source's state after every micro-batch.
Holes in the input offsets (see `streams.continuity`) are reported to Faust only after the state
that covers them is saved, so its commit never runs ahead of the state.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import faust

from streams.continuity import Admitted
from streams.metrics import Metrics
from streams.processor import Processor


class HoleReporter:
    """Takes Faust's offset-gap bookkeeping over for the input topic (see `streams.continuity`).

    Faust records every offset jump it sees as a gap that counts as acked, so it can commit past
    records it lost itself. On this consumer instance the jumps Faust sees are ignored; the holes
    the guard has filled (or confirmed empty) are reported once their batch is saved.
    """

    def __init__(self, app: faust.App) -> None:
        consumer: Any = app.consumer  # private API: see the class docstring
        self._record_gap = consumer._add_gap

        async def ignore_gap(tp: Any, offset_from: int, offset_to: int) -> None:
            return None

        consumer._add_gap = ignore_gap

    async def report(self, holes: list[tuple[Any, int, int]]) -> None:
        for tp, first, last in holes:
            await self._record_gap(tp, first, last)


class Checkpoints:
    """Saves the detector state and then acks the input it covers, once per `interval`.

    Holding scored-but-unsaved batches is safe (a crash replays them to identical messages) and
    bounded by the interval; it spares writing a busy source's state after every micro-batch.
    """

    def __init__(self, processor: Processor, interval: float, source_ttl: float) -> None:
        self.processor = processor
        self.interval = interval
        self.source_ttl = source_ttl
        self._swept = time.monotonic()
        self.lock = asyncio.Lock()
        self._events: list[Any] = []
        self._holes: list[tuple[Any, int, int]] = []
        self._last = time.monotonic()
        self._stream: Any = None
        self._reporter: HoleReporter | None = None

    def attach(self, app: faust.App, stream: Any) -> None:
        self._stream = stream
        self._reporter = self._reporter or HoleReporter(app)

    async def add(self, admitted: Admitted) -> None:
        """Called under `lock` after a batch was published."""
        self._events.extend(admitted.events)
        self._holes.extend(admitted.holes)
        if time.monotonic() - self._last >= self.interval:
            await self._flush()

    async def tick(self) -> None:
        if self._events and not self.lock.locked():
            async with self.lock:
                await self._flush()
        sweep_every = max(self.source_ttl / 10, 1.0)
        if self.source_ttl > 0 and time.monotonic() - self._swept >= sweep_every:
            async with self.lock:
                await self.processor.evict(self.source_ttl)
            self._swept = time.monotonic()

    async def _flush(self) -> None:
        await self.processor.flush()
        if self._reporter is not None:
            await self._reporter.report(self._holes)
        for event in self._events:
            await self._stream.ack(event)
        self._events.clear()
        self._holes.clear()
        self._last = time.monotonic()


def report_lag(app: faust.App, metrics: Metrics, admitted: Admitted) -> None:
    """Consumer lag per input partition: the broker's high watermark minus the next offset.

    (Wrong on Tansu, whose high watermarks are too low: see README, Testing.)
    """
    consumer: Any = app.consumer
    last: dict[Any, int] = {}
    for event in admitted.events:
        tp = event.message.tp
        last[tp] = max(last.get(tp, -1), event.message.offset)
    for tp, offset in last.items():
        highwater = consumer.highwater(tp)
        if highwater is not None:
            metrics.consumer_lag.labels(partition=str(tp.partition)).set(
                max(highwater - offset - 1, 0)
            )
