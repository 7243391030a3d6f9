"""Avro in the Confluent wire format (magic byte 0, a 4-byte big-endian schema id, the datum)
-> records, with `fastavro`.

The writer schemas come from a schema registry (`streams.formats.registry`), fetched before a
batch is decoded, so decoding itself stays pure and synchronous. A schema is examined once,
when it arrives: which fields make the source, which the time and which the signals
(`AvroOptions`); a schema that cannot map makes each of its messages a `bad_avro_schema` dead
letter naming the missing field. A datum may be one record, or an array of records (a batch
whose bad elements are dead-lettered alone, as in a JSON array). The records are then validated
by `streams.codec.to_record`: the same limits and reasons as every other format.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import fastavro
import orjson

from detectors.records import Invalid, Origin, Record
from streams.codec import BadRecord, Limits, check_size, to_record
from streams.formats.influx import PER_SECOND, SOURCE_SEPARATOR, Precision

MAGIC = 0
HEADER = 5
"""Magic byte and schema id."""
NUMERIC = frozenset({"int", "long", "float", "double", "boolean"})


@dataclass(frozen=True, slots=True)
class AvroOptions:
    """How an Avro record maps to a record (settings `avro_*`)."""

    source_fields: tuple[str, ...] = ("source",)
    """Fields whose values, joined by `/`, make the source id (`site`, `device`: `s1/pump-7`)."""
    ts_field: str = "ts"
    ts_units: Precision = "ms"
    """Units of a numeric time without a logical type (a `timestamp-*` type says its own)."""
    signals_field: str = "signals"
    """A map or record of numbers; a schema without it is flat: each numeric field that is not
    a source or time field is a signal."""


def schema_id(value: bytes | None) -> int | None:
    """The schema id of a message in the wire format, None when it is not one."""
    if value is None or len(value) < HEADER or value[0] != MAGIC:
        return None
    return int.from_bytes(value[1:HEADER], "big")


def _branches(schema: Any) -> list[Any]:
    """The types of a field: the branches of a union, else the type alone."""
    return list(schema) if isinstance(schema, list) else [schema]


def _name(schema: Any) -> str:
    """A type's name: `long`, `map`, `union` for a nested union."""
    if isinstance(schema, str):
        return schema
    return str(schema.get("type", "")) if isinstance(schema, dict) else "union"


def _numeric(schema: Any) -> bool:
    """A field that holds a number (or null): a flat record's signal."""
    kinds = [_name(branch) for branch in _branches(schema)]
    return any(kind in NUMERIC for kind in kinds) and all(
        kind in NUMERIC or kind == "null" for kind in kinds
    )


LOGICAL_UNITS = {
    "timestamp-millis": "ms",
    "timestamp-micros": "us",
    "timestamp-nanos": "ns",
    "local-timestamp-millis": "ms",
    "local-timestamp-micros": "us",
    "local-timestamp-nanos": "ns",
}
"""A time field's logical type -> the units of its long (read raw: no datetime per record)."""


@dataclass(slots=True)
class Mapping:
    """A writer schema, parsed, and where its records keep source, time and signals."""

    parsed: Any
    batch: bool
    """The datum is an array of records."""
    nested: bool
    """Signals sit in `signals_field` (a map or a record), else in the flat `flat` fields."""
    ts_units: str
    booleans: bool
    """A signal may be a boolean (made 0/1); else the values pass as fastavro gives them."""
    flat: tuple[str, ...] = field(default=())


def _raw_time(kind: Any) -> tuple[Any, str | None]:
    """A time field's type without its timestamp logical type, and that type's units."""
    if isinstance(kind, dict) and kind.get("logicalType") in LOGICAL_UNITS:
        return {k: v for k, v in kind.items() if k != "logicalType"}, LOGICAL_UNITS[
            kind["logicalType"]
        ]
    if isinstance(kind, list):  # ["null", {"type": "long", "logicalType": ...}]
        branches = [_raw_time(branch) for branch in kind]
        units = next((u for _, u in branches if u is not None), None)
        return [b for b, _ in branches], units
    return kind, None


def _has_boolean(kind: Any) -> bool:
    """Whether a signal field (or a map's or record's values) can hold a boolean."""
    for branch in _branches(kind):
        if branch == "boolean":
            return True
        if isinstance(branch, dict):
            if branch.get("type") == "boolean":
                return True
            if branch.get("type") == "map" and _has_boolean(branch.get("values")):
                return True
            if branch.get("type") == "record" and any(
                _has_boolean(f.get("type")) for f in branch.get("fields", [])
            ):
                return True
    return False


def mapping(schema: Any, options: AvroOptions) -> Mapping:
    """How records of writer schema `schema` (parsed JSON) map; `Invalid("bad_avro_schema")`
    when they cannot."""
    batch = isinstance(schema, dict) and schema.get("type") == "array"
    record = schema.get("items") if batch else schema
    if not isinstance(record, dict) or record.get("type") != "record":
        raise Invalid("bad_avro_schema", "the schema is not a record, or an array of records")
    fields = {f.get("name"): f.get("type") for f in record.get("fields", [])}
    for name in (*options.source_fields, options.ts_field):
        if name not in fields:
            raise Invalid("bad_avro_schema", f"the schema has no field {name!r}")
    raw, units = _raw_time(fields[options.ts_field])
    record = {
        **record,
        "fields": [
            {**f, "type": raw} if f.get("name") == options.ts_field else f for f in record["fields"]
        ],
    }
    try:
        parsed = fastavro.parse_schema({**schema, "items": record} if batch else record)
    except Exception as exc:  # fastavro raises several kinds (SchemaParseException, KeyError)
        raise Invalid("bad_avro_schema", f"not an Avro schema: {str(exc)[:160]}") from None
    units = units or options.ts_units
    if options.signals_field in fields:
        kind = fields[options.signals_field]
        return Mapping(parsed, batch, True, units, _has_boolean(kind))
    taken = {*options.source_fields, options.ts_field}
    flat = tuple(name for name, kind in fields.items() if name not in taken and _numeric(kind))
    if not flat:
        raise Invalid(
            "bad_avro_schema",
            f"the schema has no field {options.signals_field!r} and no numeric field",
        )
    booleans = any(_has_boolean(fields[name]) for name in flat)
    return Mapping(parsed, batch, False, units, booleans, flat)


def _seconds(ts: Any, units: str) -> Any:
    """A record's time as `to_record` takes it: epoch seconds, or the text as it came."""
    if type(ts) is int or type(ts) is float:
        return ts / PER_SECOND[units]
    return ts


def _number(value: Any) -> Any:
    return (1.0 if value else 0.0) if type(value) is bool else value


def datum_record(
    datum: Any,
    layout: Mapping,
    options: AvroOptions,
    origin: Origin | None,
    limits: Limits,
    now: float | None,
) -> Record:
    """One decoded Avro record -> one validated record."""
    if len(options.source_fields) == 1:
        source = datum.get(options.source_fields[0])
        if source is not None and type(source) is not str:
            source = str(source)
    else:
        parts = [datum.get(name) for name in options.source_fields]
        source = None if None in parts else SOURCE_SEPARATOR.join(str(part) for part in parts)
    if layout.nested:
        signals = datum.get(options.signals_field)
        if layout.booleans and isinstance(signals, dict):
            signals = {key: _number(value) for key, value in signals.items()}
    elif layout.booleans:
        signals = {name: _number(datum.get(name)) for name in layout.flat}
    else:
        signals = {name: datum.get(name) for name in layout.flat}
    record = {
        "source": source,
        "ts": _seconds(datum.get(options.ts_field), layout.ts_units),
        "signals": signals,
    }
    return to_record(record, origin, limits, now)


class AvroDecoder:
    """The `avro` input format: `streams.codec.decode`'s signature over the schemas the registry
    gave (`known`); a message whose schema is not there yet was one the registry did not know."""

    def __init__(self, options: AvroOptions | None = None) -> None:
        self.options = options or AvroOptions()
        self.known: dict[int, Mapping | Invalid] = {}
        """Schema id -> its mapping, or why its messages are dead letters."""

    def learn(self, ident: int, schema: Any) -> None:
        """Keep writer schema `schema` (parsed JSON) of id `ident`."""
        try:
            self.known[ident] = mapping(schema, self.options)
        except Invalid as exc:  # every reason of `mapping` is this one
            self.known[ident] = Invalid("bad_avro_schema", f"schema id {ident}: {exc.detail}")

    def refuse(self, ident: int, error: Invalid) -> None:
        """Messages of schema `ident` are dead letters for `error` (unknown id, not Avro)."""
        self.known[ident] = error

    def missing(self, values: Iterable[bytes | None]) -> set[int]:
        """The schema ids of `values` not yet known."""
        ids = {schema_id(value) for value in values}
        return {ident for ident in ids if ident is not None and ident not in self.known}

    def __call__(
        self, value: bytes | None, origin: Origin | None, limits: Limits, now: float | None = None
    ) -> tuple[list[Record], list[BadRecord]]:
        raw = check_size(value, limits)
        ident = schema_id(raw)
        if ident is None:
            raise Invalid(
                "bad_avro_frame", "not the Avro wire format (magic byte 0 and a 4-byte schema id)"
            )
        layout = self.known.get(ident)
        if layout is None:
            raise Invalid("unknown_schema_id", f"schema id {ident} was not fetched")
        if isinstance(layout, Invalid):  # a fresh traceback each time: it is raised often
            raise layout.with_traceback(None)
        stream = io.BytesIO(raw)
        stream.seek(HEADER)
        try:
            datum = fastavro.schemaless_reader(stream, layout.parsed, None)
        except Exception as exc:  # EOF, bad UTF-8, a bad union index: the bytes are not this schema
            detail = f"cannot decode with schema id {ident}: {str(exc)[:160]}"
            raise Invalid("bad_avro", detail) from None
        if stream.tell() != len(raw):
            raise Invalid("bad_avro", f"{len(raw) - stream.tell()} bytes left after the datum")
        if not layout.batch:
            return [datum_record(datum, layout, self.options, origin, limits, now)], []
        if not isinstance(datum, list) or not datum:
            raise Invalid("empty_array", "the array holds no records")
        good: list[Record] = []
        bad: list[BadRecord] = []
        for index, element in enumerate(datum):
            sub = (
                None
                if origin is None
                else Origin(origin.topic, origin.partition, origin.offset, index)
            )
            try:
                good.append(datum_record(element, layout, self.options, sub, limits, now))
            except Invalid as exc:  # its dead letter: the element as JSON (Avro has no cut)
                bad.append(BadRecord(index, orjson.dumps(element, default=str), exc))
        return good, bad
