"""Decode and validate input messages: bytes -> records, or a reason it goes to the dead letters.

The checks are the ones `schemas/record.schema.json` states, written out by hand because the
hot path cannot afford a generic validator (its cost: docs/benchmarks.md); a test runs both
over a corpus of good and bad records and requires them to agree. Pure code: no Kafka here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from detectors.records import Invalid, Origin, Record
from detectors.timestamps import parse_ts

MAX_VALUE = 1e15
"""Signal values beyond this are rejected: their squares would lose all precision."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits that protect the worker (settings `max_*`)."""

    max_message_bytes: int = 1_048_576
    max_signals: int = 1000
    max_name_length: int = 200
    max_future: float = 86400.0
    """Seconds a record's `ts` may lie ahead of the worker's clock (0: no bound). One record
    dated years ahead would otherwise make every later record of its source `late`."""


def too_many_sources(source: str, cap: int) -> Invalid:
    """Why a record of a source new to a worker that holds `cap` sources is refused (raised by
    `streams.state`, which knows what the worker holds; here with the other reasons)."""
    return Invalid(
        "too_many_sources",
        f"source {source!r} would be more than the {cap} sources this worker holds (max_sources)",
    )


@dataclass(frozen=True, slots=True)
class BadRecord:
    """One element of an array message that failed; the rest of the array is still scored."""

    index: int
    element: Any
    error: Invalid


def to_record(obj: Any, origin: Origin | None, limits: Limits, now: float | None = None) -> Record:
    """Validate one decoded record (the schema's `$defs/record`); `now` (epoch seconds, the
    worker's clock) bounds its `ts` by `limits.max_future`."""
    if type(obj) is not dict:
        raise Invalid("not_record", f"a record must be a JSON object, got {json_type(obj)}")
    source = obj.get("source")
    if source is None:
        raise Invalid("missing_source", "record has no source")
    if type(source) is not str or not source or len(source) > limits.max_name_length:
        raise Invalid(
            "bad_source", f"source must be a string of 1..{limits.max_name_length} characters"
        )
    ts, ts_text = parse_ts(obj.get("ts"))
    if now is not None and limits.max_future and ts > now + limits.max_future:
        raise Invalid(
            "ts_in_future",
            f"ts {ts_text} is {ts - now:.0f} s ahead of this worker's clock "
            f"(the limit is {limits.max_future:.0f} s)",
        )
    signals = obj.get("signals")
    if signals is None:
        raise Invalid("missing_signals", "record has no signals")
    if type(signals) is not dict:
        raise Invalid("bad_signals", f"signals must be an object, got {json_type(signals)}")
    if not signals:
        raise Invalid("empty_signals", "signals is empty")
    if len(signals) > limits.max_signals:
        raise Invalid(
            "too_many_signals", f"{len(signals)} signals, the limit is {limits.max_signals}"
        )
    clean: dict[str, float | None] = {}
    for name, value in signals.items():
        if not name or len(name) > limits.max_name_length:
            raise Invalid(
                "bad_signal_name", f"signal names must have 1..{limits.max_name_length} characters"
            )
        kind = type(value)
        if kind is float:
            if not -MAX_VALUE <= value <= MAX_VALUE:
                raise Invalid("bad_signal_value", f"signals.{name[:40]}: {value!r} is out of range")
            clean[name] = value
        elif kind is int:
            if not -MAX_VALUE <= value <= MAX_VALUE:
                raise Invalid("bad_signal_value", f"signals.{name[:40]}: {value!r} is out of range")
            clean[name] = float(value)
        elif value is None:
            clean[name] = None
        else:
            raise Invalid(
                "bad_signal_value",
                f"signals.{name[:40]}: expected a number or null, got {json_type(value)}",
            )
    return Record(source=source, ts=ts, ts_text=ts_text, signals=clean, origin=origin)


def check_size(value: bytes | None, limits: Limits) -> bytes:
    """The checks every input format starts with: a value, and not too large."""
    if value is None:
        raise Invalid("empty", "message has no value (tombstone)")
    if len(value) > limits.max_message_bytes:
        raise Invalid("too_large", f"{len(value)} bytes, the limit is {limits.max_message_bytes}")
    return value


def load_json(value: bytes | None, limits: Limits) -> Any:
    """A JSON message's value, parsed after `check_size` (shared by the JSON formats)."""
    try:
        return orjson.loads(check_size(value, limits))
    except orjson.JSONDecodeError as exc:
        reason = "bad_utf8" if "UTF-8" in str(exc) else "invalid_json"
        raise Invalid(reason, str(exc)[:200]) from None


def decode(
    value: bytes | None, origin: Origin | None, limits: Limits, now: float | None = None
) -> tuple[list[Record], list[BadRecord]]:
    """A message -> its good records and its bad elements (`now`: see `to_record`).

    Raises `Invalid` when the message as a whole is unusable (size, encoding, JSON, shape).
    """
    obj = load_json(value, limits)
    if type(obj) is dict:
        return [to_record(obj, origin, limits, now)], []
    if type(obj) is not list:
        raise Invalid("not_record", f"expected an object or an array, got {json_type(obj)}")
    if not obj:
        raise Invalid("empty_array", "the array holds no records")
    good: list[Record] = []
    bad: list[BadRecord] = []
    for index, element in enumerate(obj):
        sub = (
            None if origin is None else Origin(origin.topic, origin.partition, origin.offset, index)
        )
        try:
            good.append(to_record(element, sub, limits, now))
        except Invalid as exc:
            bad.append(BadRecord(index, element, exc))
    return good, bad


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else type(value).__name__
