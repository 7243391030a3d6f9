"""Input formats: each turns a message's bytes into records, with `streams.codec.decode`'s
signature, limits and dead-letter reasons (docs/messages.md, "Input formats")."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Literal

import orjson

from detectors.records import Origin, Record
from streams.codec import BadRecord, Limits, decode
from streams.formats.avro import AvroDecoder, AvroOptions
from streams.formats.influx import InfluxOptions, decode_influx
from streams.formats.telegraf import decode_telegraf

Format = Literal["json", "influx", "telegraf-json", "avro"]
FORMATS: tuple[Format, ...] = ("json", "influx", "telegraf-json")
"""The formats a message carries whole; `avro` needs its writer schemas from a registry."""
ALL_FORMATS: tuple[Format, ...] = (*FORMATS, "avro")
Decoder = Callable[
    [bytes | None, Origin | None, Limits, float | None], tuple[list[Record], list[BadRecord]]
]


def decoder_for(
    format: str, options: InfluxOptions | None = None, avro: AvroOptions | None = None
) -> Decoder:
    """The decoder of `format` (`ANOMSTREAM_INPUT_FORMAT`), its options bound; an `AvroDecoder`
    knows no schema until a `streams.formats.registry.SchemaFetcher` fetched them."""
    if format == "json":
        return decode
    if format == "avro":
        return AvroDecoder(avro)
    chosen = options or InfluxOptions()
    if format == "influx":
        return partial(decode_influx, options=chosen)
    if format == "telegraf-json":
        return partial(decode_telegraf, options=chosen)
    raise ValueError(f"unknown input format {format!r}: use {', '.join(ALL_FORMATS)}")


def elements(value: bytes | None) -> list[bytes] | None:
    """The bytes of each record of a message in any format, for the dead letters of records
    refused after decoding (`too_many_sources`): the elements of a JSON array or of a Telegraf
    batch's `metrics`, the lines of line protocol; None for a message of one record."""
    raw = value or b""
    if raw[:1] == b"\x00":  # Avro's wire format: no JSON or line protocol starts so
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:  # line protocol
        return [line.strip(b" \t\r") for line in raw.split(b"\n")]
    if type(body) is dict and "signals" not in body:
        body = body.get("metrics")
    return [orjson.dumps(item) for item in body] if type(body) is list else None


def element_bytes(value: bytes | None, item: int) -> bytes:
    """The bytes of record `item` of a message (`elements`), else the whole message."""
    parts = elements(value)
    return parts[item] if parts is not None and 0 <= item < len(parts) else value or b""
