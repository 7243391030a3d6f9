"""Decode and validate input messages: bytes -> records, or a reason it goes to the dead letters.

The checks are the ones `schemas/record.schema.json` states, written out by hand because the
hot path cannot afford a generic validator (~30 µs a record); a test runs both over a corpus of
good and bad records and requires them to agree. Pure code: no Kafka here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from detectors.records import Origin, Record

MAX_VALUE = 1e15
"""Signal values beyond this are rejected: their squares would lose all precision."""
TS_MIN, TS_MAX = 0.0, 4102444800.0
"""Event times between 1970-01-01 and 2100-01-01: anything else is a unit or clock error."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits that protect the worker (settings `max_*`)."""

    max_message_bytes: int = 1_048_576
    max_signals: int = 1000
    max_name_length: int = 200


class Invalid(ValueError):
    """Why a message or record cannot be scored: a short `reason` (a metric label) and a detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class BadRecord:
    """One element of an array message that failed; the rest of the array is still scored."""

    index: int
    element: Any
    error: Invalid


def parse_ts(value: Any) -> tuple[float, str]:
    """Epoch seconds and the text to echo; RFC 3339 strings or epoch numbers (naive = UTC)."""
    if type(value) is str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise Invalid("bad_ts", f"ts {value[:40]!r} is not an RFC 3339 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
        text = value
    elif type(value) is float or type(value) is int:
        seconds = float(value)
        text = ""
    elif value is None:
        raise Invalid("missing_ts", "record has no ts")
    else:
        raise Invalid("bad_ts", f"ts must be a string or a number, got {type(value).__name__}")
    if not TS_MIN <= seconds <= TS_MAX:
        raise Invalid("bad_ts", f"ts {value!r} is outside 1970..2100")
    if not text:
        text = epoch_text(seconds)
    return seconds, text


_MINUTES: dict[int, str] = {}
"""Minute since the epoch -> its RFC 3339 text up to the seconds: records of a stream share
their minute, and formatting the date and time was a twentieth of the worker's time."""


def epoch_text(seconds: float) -> str:
    """`datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")` with `Z`:
    the same rounding (to the microsecond, half to even; then milliseconds truncated)."""
    frac, whole = math.modf(seconds)
    us = round(frac * 1e6)
    second = int(whole)
    if us >= 1_000_000:
        second, us = second + 1, us - 1_000_000
    minute, sec = divmod(second, 60)
    prefix = _MINUTES.get(minute)
    if prefix is None:
        if len(_MINUTES) >= 4096:
            _MINUTES.clear()
        prefix = _MINUTES[minute] = datetime.fromtimestamp(minute * 60, UTC).strftime(
            "%Y-%m-%dT%H:%M:"
        )
    return f"{prefix}{sec:02d}.{us // 1000:03d}Z"


def to_record(obj: Any, origin: Origin | None, limits: Limits) -> Record:
    """Validate one decoded record (the schema's `$defs/record`)."""
    if type(obj) is not dict:
        raise Invalid("not_record", f"a record must be a JSON object, got {_json_type(obj)}")
    source = obj.get("source")
    if source is None:
        raise Invalid("missing_source", "record has no source")
    if type(source) is not str or not source or len(source) > limits.max_name_length:
        raise Invalid(
            "bad_source", f"source must be a string of 1..{limits.max_name_length} characters"
        )
    ts, ts_text = parse_ts(obj.get("ts"))
    signals = obj.get("signals")
    if signals is None:
        raise Invalid("missing_signals", "record has no signals")
    if type(signals) is not dict:
        raise Invalid("bad_signals", f"signals must be an object, got {_json_type(signals)}")
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
                f"signals.{name[:40]}: expected a number or null, got {_json_type(value)}",
            )
    return Record(source=source, ts=ts, ts_text=ts_text, signals=clean, origin=origin)


def decode(
    value: bytes | None, origin: Origin | None, limits: Limits
) -> tuple[list[Record], list[BadRecord]]:
    """A message -> its good records and its bad elements.

    Raises `Invalid` when the message as a whole is unusable (size, encoding, JSON, shape).
    """
    if value is None:
        raise Invalid("empty", "message has no value (tombstone)")
    if len(value) > limits.max_message_bytes:
        raise Invalid("too_large", f"{len(value)} bytes, the limit is {limits.max_message_bytes}")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        reason = "bad_utf8" if "UTF-8" in str(exc) else "invalid_json"
        raise Invalid(reason, str(exc)[:200]) from None
    if type(obj) is dict:
        return [to_record(obj, origin, limits)], []
    if type(obj) is not list:
        raise Invalid("not_record", f"expected an object or an array, got {_json_type(obj)}")
    if not obj:
        raise Invalid("empty_array", "the array holds no records")
    good: list[Record] = []
    bad: list[BadRecord] = []
    for index, element in enumerate(obj):
        sub = (
            None if origin is None else Origin(origin.topic, origin.partition, origin.offset, index)
        )
        try:
            good.append(to_record(element, sub, limits))
        except Invalid as exc:
            bad.append(BadRecord(index, element, exc))
    return good, bad


def _json_type(value: Any) -> str:
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
