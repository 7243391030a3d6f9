"""`anomstream replay`: a CSV file into the input topic, at a steady rate."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson

from detectors.csvdata import layout, rows
from streams.clients import start_producer
from streams.settings import Settings


async def replay(
    settings: Settings,
    path: Path,
    rate: float,
    source: str,
    time_col: str | None = None,
    source_col: str | None = None,
    limit: int | None = None,
) -> int:
    """Produce every row as one record keyed by its source; `rate` <= 0 = as fast as possible."""
    spec = layout(path, time_col=time_col, source_col=source_col)
    producer = await start_producer(settings)
    sent = 0
    pending = []
    started = time.monotonic()
    try:
        for row in rows(path, spec, source):
            if limit is not None and sent >= limit:
                break
            record = {"source": row.source, "ts": row.ts_text, "signals": row.signals}
            pending.append(
                await producer.send(
                    settings.kafka.topic_signals, orjson.dumps(record), key=row.source.encode()
                )
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
