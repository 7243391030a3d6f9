"""Event times: RFC 3339 text or epoch numbers -> epoch seconds, and back to the text we echo.

Shared by the stream's decoder and the CSV reader, so a time means the same in both.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from detectors.records import Invalid

TS_MIN, TS_MAX = 0.0, 4102444800.0
"""Event times between 1970-01-01 and 2100-01-01: anything else is a unit or clock error."""


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
their minute, and formatting the date and time per record was a measurable share of the
worker's time (docs/benchmarks.md)."""


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
