"""`anomstream replay`: a CSV file into the input topic, at a steady rate.

The file is read as `detect` reads it (`csv_options`, the same warnings), so what a worker
scores from a replay is what `detect` scores offline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from detectors.records import Record
from streams.clients import start_producer
from streams.formats.registry import RegistryDown
from streams.formats.writers import AvroWriter, avro_schema, write
from streams.settings import Settings, SettingsError


async def writer(settings: Settings, format: str) -> Callable[[Record], bytes | None]:
    """How a record becomes a message in `format`; for `avro` its schema is registered first,
    under the subject `<topic>-value` (Confluent's default naming), as a producer would."""
    if format != "avro":
        options = settings.input.options()
        return lambda record: write(record, format, options)
    try:
        registry = settings.input.registry()
    except ValueError as exc:
        raise SettingsError(f"replay --format avro: {exc}") from None
    schema = avro_schema(settings.input.avro())
    subject = f"{settings.kafka.topic_signals}-value"
    try:
        ident = await asyncio.to_thread(registry.register, subject, schema)
    except RegistryDown as exc:
        raise SettingsError(f"schema registry {registry.url}: {exc}") from None
    return AvroWriter(ident, settings.input.avro())


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
    encode = await writer(settings, format)
    producer = await start_producer(settings)
    sent = 0
    pending = []
    started = time.monotonic()
    try:
        for record in chosen:
            value = encode(record)
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
