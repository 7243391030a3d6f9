"""`anomstream replay`: a CSV file into the input topic, at a steady rate.

The file is read as `detect` reads it (`csv_options`, the same warnings), so what a worker
scores from a replay is what `detect` scores offline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from detectors.records import Record
from streams.clients import start_producer
from streams.formats.writers import write
from streams.settings import Settings


async def replay(
    settings: Settings,
    records: Sequence[Record],
    rate: float,
    limit: int | None = None,
    format: str = "json",
) -> int:
    """Produce every record keyed by its source, one message each in `format` (a record the
    format cannot carry is skipped); `rate` <= 0 = as fast as possible."""
    chosen = records if limit is None else records[: max(limit, 0)]
    producer = await start_producer(settings)
    sent = 0
    pending = []
    started = time.monotonic()
    options = settings.input.options()
    try:
        for record in chosen:
            value = write(record, format, options)
            if value is None:
                continue
            pending.append(
                await producer.send(settings.kafka.topic_signals, value, key=record.source.encode())
            )
            sent += 1
            if rate > 0:
                ahead = started + sent / rate - time.monotonic()
                if ahead > 0.005:
                    await asyncio.sleep(ahead)
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent
