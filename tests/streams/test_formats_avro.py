"""The `avro` input format: Confluent's wire format, writer schemas mapped to source / time /
signals, batches of records, and one dead-letter reason per way a message can be wrong (unit
tier; the registry client is in `test_formats_registry.py`)."""

from __future__ import annotations

import io
import math
from typing import Any

import fastavro
import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from detectors.records import Invalid, Origin, Record
from detectors.timestamps import epoch_text
from streams.codec import Limits
from streams.formats import decoder_for, elements
from streams.formats.avro import AvroDecoder, AvroOptions, mapping, schema_id
from streams.formats.writers import AvroWriter, avro_schema

TS = 1_795_514_400
ORIGIN = Origin("signals", 3, 41)


def framed(ident: int, schema: Any, datum: Any) -> bytes:
    """`datum` as a producer using Confluent's serializer writes it (`schema` registered as
    `ident`), written by fastavro's own writer, not by the code under test."""
    out = io.BytesIO()
    out.write(b"\x00" + ident.to_bytes(4, "big"))
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), datum)
    return out.getvalue()


def decoder(ident: int, schema: Any, options: AvroOptions | None = None) -> AvroDecoder:
    chosen = AvroDecoder(options)
    chosen.learn(ident, schema)
    return chosen


def record(fields: list[dict[str, Any]], name: str = "Reading") -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": fields}


def test_the_written_schema_round_trips_with_one_and_with_several_source_fields() -> None:
    for options, source in [
        (AvroOptions(), "cpu/web-1"),  # one field: the whole id, slashes and all
        (AvroOptions(("site", "device"), "time", "ms", "values"), "s1/pump-7"),
    ]:
        rec = Record(source, TS + 0.25, epoch_text(TS + 0.25), {"x": 1.5, "gap": None})
        message = AvroWriter(12, options)(rec)
        assert schema_id(message) == 12
        ((back,), bad) = decoder(12, avro_schema(options), options)(message, ORIGIN, Limits())
        assert not bad
        # a missing value is left out of the map: the record has no value for it, as JSON's null
        assert (back.source, back.ts, back.signals, back.origin) == (
            source,
            TS + 0.25,
            {"x": 1.5},
            ORIGIN,
        )


def test_a_flat_record_signals_its_numeric_fields_booleans_as_0_1_strings_ignored() -> None:
    schema = record(
        [
            {"name": "site", "type": "string"},
            {"name": "device", "type": "int"},
            {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "temp", "type": "double"},
            {"name": "rpm", "type": ["null", "long"]},
            {"name": "running", "type": "boolean"},
            {"name": "note", "type": "string"},
        ]
    )
    options = AvroOptions(source_fields=("site", "device"))
    datum = {
        "site": "s1",
        "device": 7,
        "ts": TS * 1000 + 500,
        "temp": 71.5,
        "rpm": None,
        "running": True,
        "note": "fine",
    }
    ((rec,), _) = decoder(1, schema, options)(framed(1, schema, datum), None, Limits())
    assert rec.source == "s1/7" and rec.ts == TS + 0.5
    assert rec.signals == {"temp": 71.5, "rpm": None, "running": 1.0}


@pytest.mark.parametrize(
    ("kind", "value", "units"),
    [
        ({"type": "long", "logicalType": "timestamp-micros"}, TS * 1_000_000, "s"),
        (["null", {"type": "long", "logicalType": "timestamp-nanos"}], TS * 10**9, "s"),
        ({"type": "long", "logicalType": "local-timestamp-millis"}, TS * 1000, "s"),
        ("long", TS * 1000, "ms"),  # no logical type: the ts_units setting says
        ("double", TS + 0.5, "s"),
        ("string", "2026-11-24T10:00:00Z", "s"),  # text: as in JSON
    ],
)
def test_the_time_field_in_each_of_its_types(kind: Any, value: Any, units: Any) -> None:
    schema = record(
        [
            {"name": "source", "type": "string"},
            {"name": "ts", "type": kind},
            {"name": "signals", "type": {"type": "map", "values": "float"}},
        ]
    )
    options = AvroOptions(ts_units=units)
    datum = {"source": "a", "ts": value, "signals": {"x": 2.0}}
    ((rec,), _) = decoder(5, schema, options)(framed(5, schema, datum), None, Limits())
    assert math.floor(rec.ts) == TS and rec.signals == {"x": 2.0}


def test_signals_as_a_nested_record_with_a_boolean() -> None:
    inner = record(
        [{"name": "p", "type": "double"}, {"name": "open", "type": "boolean"}], "Signals"
    )
    schema = record(
        [
            {"name": "source", "type": "string"},
            {"name": "ts", "type": "long"},
            {"name": "signals", "type": inner},
        ]
    )
    datum = {"source": "v1", "ts": TS * 1000, "signals": {"p": 3.0, "open": False}}
    ((rec,), _) = decoder(2, schema)(framed(2, schema, datum), None, Limits())
    assert rec.signals == {"p": 3.0, "open": 0.0}


def test_an_array_of_records_is_a_batch_whose_bad_element_alone_is_a_dead_letter() -> None:
    schema = {"type": "array", "items": avro_schema()}
    good = {"source": "a", "ts": TS * 1_000_000, "signals": {"x": 1.0}}
    bad = {"source": "a", "ts": TS * 1_000_000, "signals": {"x": math.inf}}
    chosen = decoder(9, schema)
    records, dead = chosen(framed(9, schema, [good, bad, good]), ORIGIN, Limits())
    assert [r.origin for r in records] == [Origin("signals", 3, 41, 0), Origin("signals", 3, 41, 2)]
    ((item,),) = [dead]
    assert item.index == 1 and item.error.reason == "bad_signal_value"
    assert orjson.loads(item.element)["source"] == "a"  # the element, as JSON
    with pytest.raises(Invalid) as caught:
        chosen(framed(9, schema, []), ORIGIN, Limits())
    assert caught.value.reason == "empty_array"
    assert elements(framed(9, schema, [good])) is None  # not split as JSON or line protocol


PLAIN = avro_schema()
DATUM = {"source": "a", "ts": TS * 1_000_000, "signals": {"x": 1.0}}


@pytest.mark.parametrize(
    ("message", "known", "reason"),
    [
        (b'{"source": "a", "ts": 1, "signals": {"x": 1}}', {}, "bad_avro_frame"),
        (b"\x00\x00\x01", {}, "bad_avro_frame"),  # shorter than the header
        (b"\x01\x00\x00\x00\x01abc", {}, "bad_avro_frame"),  # another magic byte
        (framed(1, PLAIN, DATUM), {}, "unknown_schema_id"),  # the fetcher did not run
        (framed(1, PLAIN, DATUM)[:-3], {1: PLAIN}, "bad_avro"),  # truncated
        (framed(1, PLAIN, DATUM) + b"\x02", {1: PLAIN}, "bad_avro"),  # bytes left over
        (b"\x00\x00\x00\x00\x01" + b"\xff" * 8, {1: PLAIN}, "bad_avro"),  # not this schema
        (framed(1, PLAIN, DATUM), {1: {"type": "enum", "name": "E", "symbols": ["A"]}}, None),
        (framed(1, PLAIN, DATUM), {1: record([{"name": "ts", "type": "long"}])}, None),
        (None, {}, "empty"),
        (b"\x00" * 2_000_000, {}, "too_large"),
    ],
)
def test_every_bad_message_has_its_reason(
    message: bytes | None, known: dict[int, Any], reason: str | None
) -> None:
    chosen = AvroDecoder()
    for ident, schema in known.items():
        chosen.learn(ident, schema)
    with pytest.raises(Invalid) as caught:
        chosen(message, ORIGIN, Limits())
    assert caught.value.reason == (reason or "bad_avro_schema")
    if reason is None:  # a schema refused when it came: its messages say which and why
        assert caught.value.detail.startswith("schema id 1: ")


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ([{"name": "ts", "type": "long"}, {"name": "x", "type": "double"}], "no field 'source'"),
        ([{"name": "source", "type": "string"}, {"name": "x", "type": "double"}], "'ts'"),
        (
            [{"name": "source", "type": "string"}, {"name": "ts", "type": "long"}],
            "no numeric field",
        ),
        (
            [
                {"name": "source", "type": "string"},
                {"name": "ts", "type": "long"},
                {"name": "x", "type": "decimal128"},  # no such Avro type
            ],
            "not an Avro schema",
        ),
    ],
)
def test_a_schema_that_cannot_map_says_which_field(fields: list[Any], says: str) -> None:
    with pytest.raises(Invalid, match=says) as caught:
        mapping(record(fields), AvroOptions())
    assert caught.value.reason == "bad_avro_schema"

    many: dict[str, float | None] = {f"s{i}": float(i) for i in range(20)}
    many = {f"s{i}": float(i) for i in range(20)}
    message = AvroWriter(4)(Record("a", TS, epoch_text(TS), many))
    with pytest.raises(Invalid) as caught:
        decoder(4, PLAIN)(message, None, Limits(max_signals=10))
    assert caught.value.reason == "too_many_signals"
    ahead = AvroWriter(4)(Record("a", TS + 10**6, epoch_text(TS + 10**6), {"x": 1.0}))
    with pytest.raises(Invalid) as caught:
        decoder(4, PLAIN)(ahead, None, Limits(), now=TS)
    assert caught.value.reason == "ts_in_future"


def test_a_refused_schema_keeps_its_reason_and_settings_choose_avro() -> None:
    chosen = decoder_for("avro", avro=AvroOptions(ts_field="time"))
    assert isinstance(chosen, AvroDecoder) and chosen.options.ts_field == "time"
    chosen.refuse(3, Invalid("unknown_schema_id", "the registry has no schema id 3"))
    assert chosen.missing([framed(3, PLAIN, DATUM), framed(8, PLAIN, DATUM), b"{}", None]) == {8}
    with pytest.raises(Invalid, match="registry has no schema id 3") as caught:
        chosen(framed(3, PLAIN, DATUM), None, Limits())
    assert caught.value.reason == "unknown_schema_id"


@settings(max_examples=200, deadline=None)
@given(
    fields=st.sampled_from([("source",), ("site", "device"), ("a", "b", "c")]),
    parts=st.lists(st.text(st.characters(codec="utf-8", exclude_characters="/"), min_size=1)),
    signals=st.dictionaries(st.text(min_size=1, max_size=20), st.floats(-1e12, 1e12), min_size=1),
    micros=st.integers(0, 4_000_000_000_000_000),
)
def test_a_written_record_decodes_back(
    fields: tuple[str, ...], parts: list[str], signals: dict[str, float], micros: int
) -> None:
    options = AvroOptions(source_fields=fields)
    source = "/".join(parts[: len(fields)]) if len(parts) >= len(fields) else None
    assume(source is not None and len(source) <= 200)
    assume(all(len(name) <= 200 for name in signals))
    ts = micros / 1_000_000
    rec = Record(str(source), ts, epoch_text(ts), dict[str, float | None](signals))
    ((back,), _) = decoder(2, avro_schema(options), options)(
        AvroWriter(2, options)(rec), None, Limits()
    )
    assert (back.source, back.signals) == (rec.source, rec.signals)
    assert abs(back.ts - ts) < 1e-6
