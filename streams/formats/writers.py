"""Records -> messages in each input format: what `anomstream replay --format` produces and the
benchmark decodes, so tests and demos feed the worker what Telegraf would.

The source id is split back into the measurement and the source tags (`cpu/web-1` with source
tags `host` -> `cpu,host=web-1`), so decoding a written message gives the record back.
"""

from __future__ import annotations

import io
from typing import Any

import fastavro
import orjson

from detectors.records import Record
from streams.formats.avro import HEADER, MAGIC, AvroOptions
from streams.formats.influx import DEFAULT_OPTIONS, PER_SECOND, SOURCE_SEPARATOR, InfluxOptions

_NAME = str.maketrans({",": "\\,", " ": "\\ "})
_KEY = str.maketrans({",": "\\,", " ": "\\ ", "=": "\\="})


def split_source(source: str, options: InfluxOptions) -> tuple[str, dict[str, str]]:
    """The measurement and the source tags' values that make `source` (`source_of` reversed)."""
    parts = source.split(SOURCE_SEPARATOR, len(options.source_tags))
    return parts[0], dict(zip(options.source_tags, parts[1:], strict=False))


def _stamp(ts: float, units: str) -> int | float:
    """`ts` in `units`: an integer (to the microsecond: a float holds no more), or fractional
    seconds."""
    if units == "s":
        return int(ts) if ts.is_integer() else ts
    micros = round(ts * 1_000_000)
    per = PER_SECOND[units]
    return micros * (per // 1_000_000) if per >= 1_000_000 else round(micros / (1_000_000 // per))


def influx_line(record: Record, options: InfluxOptions = DEFAULT_OPTIONS) -> bytes | None:
    """One line of line protocol; None when every value is missing (a line needs a field)."""
    fields = ",".join(
        f"{name.translate(_KEY)}={value!r}"
        for name, value in record.signals.items()
        if value is not None
    )
    if not fields:
        return None
    name, tags = split_source(record.source, options)
    head = name.translate(_NAME) + "".join(
        f",{key.translate(_KEY)}={value.translate(_KEY)}" for key, value in tags.items() if value
    )
    stamp = _stamp(record.ts, options.precision)
    return f"{head} {fields} {stamp}".encode()


def telegraf_metric(record: Record, options: InfluxOptions = DEFAULT_OPTIONS) -> dict[str, Any]:
    """One metric as Telegraf's JSON serializer writes it."""
    name, tags = split_source(record.source, options)
    return {
        "fields": {k: v for k, v in record.signals.items() if v is not None},
        "name": name,
        "tags": tags,
        "timestamp": _stamp(record.ts, options.json_precision),
    }


def write(record: Record, format: str, options: InfluxOptions = DEFAULT_OPTIONS) -> bytes | None:
    """The message for one record in `format`; None when the format cannot carry it."""
    if format == "influx":
        return influx_line(record, options)
    if format == "telegraf-json":
        return orjson.dumps(telegraf_metric(record, options))
    if format == "json":
        return orjson.dumps(
            {"source": record.source, "ts": record.ts_text, "signals": record.signals}
        )
    raise ValueError(f"unknown input format {format!r}")


def avro_schema(options: AvroOptions | None = None) -> dict[str, Any]:
    """The writer schema `replay --format avro` registers: the source fields as strings, the
    time as `timestamp-micros`, the signals a map of doubles (a missing value is left out: a
    union per value would cost fastavro a third more), named as `options` map."""
    chosen = options or AvroOptions()
    return {
        "type": "record",
        "name": "Record",
        "namespace": "anomstream",
        "fields": [
            *({"name": name, "type": "string"} for name in chosen.source_fields),
            {"name": chosen.ts_field, "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": chosen.signals_field, "type": {"type": "map", "values": "double"}},
        ],
    }


class AvroWriter:
    """Records -> Avro messages in the Confluent wire format under schema id `ident`
    (`avro_schema`, or with `batch` an array of such records: registered by the caller)."""

    def __init__(self, ident: int, options: AvroOptions | None = None, batch: bool = False) -> None:
        self.options = options or AvroOptions()
        schema: dict[str, Any] = avro_schema(self.options)
        self.schema = fastavro.parse_schema({"type": "array", "items": schema} if batch else schema)
        self.header = bytes([MAGIC]) + ident.to_bytes(HEADER - 1, "big")

    def datum(self, record: Record) -> dict[str, Any]:
        fields = self.options.source_fields
        parts = record.source.split(SOURCE_SEPARATOR, len(fields) - 1)
        parts += [""] * (len(fields) - len(parts))  # a source with fewer parts than fields
        datum: dict[str, Any] = dict(zip(fields, parts, strict=True))
        datum[self.options.ts_field] = round(record.ts * 1_000_000)
        signals = {name: value for name, value in record.signals.items() if value is not None}
        datum[self.options.signals_field] = signals
        return datum

    def __call__(self, record: Record) -> bytes:
        return self.frame(self.datum(record))

    def many(self, records: list[Record]) -> bytes:
        """One message of `records` (the writer made with `batch`)."""
        return self.frame([self.datum(record) for record in records])

    def frame(self, datum: Any) -> bytes:
        out = io.BytesIO()
        out.write(self.header)
        fastavro.schemaless_writer(out, self.schema, datum)
        return out.getvalue()
