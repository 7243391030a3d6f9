from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from detectors.records import Invalid, Origin
from detectors.timestamps import epoch_text, parse_ts
from streams.codec import Limits, decode, to_record
from tests.schemas import record_validator

LIMITS = Limits(max_message_bytes=4096, max_signals=5, max_name_length=20)
ORIGIN = Origin("signals", 1, 42)
GOOD = {
    "source": "pump-7",
    "ts": "2026-11-24T10:00:00.250Z",
    "signals": {"temp": 71.2, "p": None, "n": 3},
}

# (raw message bytes, expected reason) for every malformed kind the worker must dead-letter.
BAD_MESSAGES: list[tuple[bytes | None, str]] = [
    (b'{"source": "a", "ts": 1', "invalid_json"),
    (b'{"source": "a", "ts": NaN, "signals": {"x": 1}}', "invalid_json"),
    (b'{"source": "\xff\xfe", "ts": 1, "signals": {"x": 1}}', "bad_utf8"),
    (b'"just a string"', "not_record"),
    (b"42", "not_record"),
    (b"[]", "empty_array"),
    (b'{"ts": 1, "signals": {"x": 1}}', "missing_source"),
    (b'{"source": "", "ts": 1, "signals": {"x": 1}}', "bad_source"),
    (b'{"source": 7, "ts": 1, "signals": {"x": 1}}', "bad_source"),
    (b'{"source": "a", "signals": {"x": 1}}', "missing_ts"),
    (b'{"source": "a", "ts": "yesterday", "signals": {"x": 1}}', "bad_ts"),
    (b'{"source": "a", "ts": 1e12, "signals": {"x": 1}}', "bad_ts"),
    (b'{"source": "a", "ts": -5, "signals": {"x": 1}}', "bad_ts"),
    (b'{"source": "a", "ts": true, "signals": {"x": 1}}', "bad_ts"),
    (b'{"source": "a", "ts": 1}', "missing_signals"),
    (b'{"source": "a", "ts": 1, "signals": [1, 2]}', "bad_signals"),
    (b'{"source": "a", "ts": 1, "signals": {}}', "empty_signals"),
    (b'{"source": "a", "ts": 1, "signals": {"x": "hot"}}', "bad_signal_value"),
    (b'{"source": "a", "ts": 1, "signals": {"x": true}}', "bad_signal_value"),
    (b'{"source": "a", "ts": 1, "signals": {"x": {"nested": 1}}}', "bad_signal_value"),
    (b'{"source": "a", "ts": 1, "signals": {"x": 1e300}}', "bad_signal_value"),
    (b'{"source": "a", "ts": 1, "signals": {"": 1}}', "bad_signal_name"),
    (
        orjson.dumps({"source": "a", "ts": 1, "signals": {f"s{i}": i for i in range(6)}}),
        "too_many_signals",
    ),
    (b'{"source": "a", "ts": 1, "signals": {"x": 1}, "pad": "' + b"x" * 5000 + b'"}', "too_large"),
    (None, "empty"),
]


def reason_of(raw: bytes | None) -> str:
    try:
        good, bad = decode(raw, ORIGIN, LIMITS)
    except Invalid as exc:
        return exc.reason
    assert not good and len(bad) == 1
    return bad[0].error.reason


def test_a_good_record_decodes_with_its_provenance() -> None:
    (rec,), bad = decode(orjson.dumps(GOOD), ORIGIN, LIMITS)
    assert not bad
    assert rec.source == "pump-7"
    assert rec.ts == pytest.approx(1795514400.25)
    assert rec.ts_text == GOOD["ts"]
    assert rec.signals == {"temp": 71.2, "p": None, "n": 3.0}
    assert rec.origin == ORIGIN


@pytest.mark.parametrize(("raw", "reason"), BAD_MESSAGES, ids=[r for _, r in BAD_MESSAGES])
def test_every_malformed_kind_has_its_reason(raw: bytes | None, reason: str) -> None:
    assert reason_of(raw) == reason


def test_an_array_keeps_its_good_records_and_names_the_bad_ones() -> None:
    raw = orjson.dumps([GOOD, {"source": "b", "ts": "x", "signals": {"a": 1}}, GOOD])
    good, bad = decode(raw, ORIGIN, LIMITS)
    assert [r.origin.item for r in good if r.origin] == [0, 2]
    assert [(b.index, b.error.reason) for b in bad] == [(1, "bad_ts")]


def test_epoch_seconds_are_echoed_as_rfc3339() -> None:
    assert parse_ts(1795514400.25) == (1795514400.25, "2026-11-24T10:00:00.250Z")
    assert parse_ts("2026-11-24T10:00:00")[0] == 1795514400.0  # naive = UTC


CORPUS: list[Any] = [
    GOOD,
    {**GOOD, "ts": 1795514400},
    {**GOOD, "extra": [1, 2]},
    {**GOOD, "signals": {"a": -1e15}},
    {**GOOD, "signals": {"a": 1e16}},
    {**GOOD, "signals": {"a": False}},
    {**GOOD, "signals": {"a": []}},
    {**GOOD, "signals": {}},
    {**GOOD, "source": ""},
    {**GOOD, "source": "x" * 21},
    {**GOOD, "ts": 5e9},
    {**GOOD, "ts": None},
    {"source": "a", "ts": 1},
    [GOOD],
    "text",
    None,
]


@pytest.mark.parametrize("obj", CORPUS)
def test_the_fast_validator_agrees_with_the_json_schema(obj: Any) -> None:
    schema_ok = record_validator().is_valid(obj)
    # The schema's limits are the defaults; align the names limit for this corpus.
    if isinstance(obj, dict) and isinstance(obj.get("source"), str) and len(obj["source"]) > 20:
        schema_ok = False
    try:
        to_record(obj, None, LIMITS)
        ours = True
    except Invalid:
        ours = False
    assert ours == schema_ok


def test_epoch_text_matches_datetime_formatting() -> None:
    """The cached formatter rounds exactly as datetime does (microseconds half to even, then
    milliseconds truncated), including carries into the next second, minute and day."""
    rng = random.Random(5)
    cases = [0.0, 59.9999995, 59.9999994, 86399.9999996, 1e9 + 0.0005, 1e9 + 0.9995, 4102444800.0]
    cases += [rng.uniform(0, 4102444800.0) for _ in range(20000)]
    cases += [rng.randrange(0, 4102444800) + rng.randrange(0, 1000) / 1e3 for _ in range(20000)]
    for seconds in cases:
        expected = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
        assert epoch_text(seconds) == expected.replace("+00:00", "Z"), seconds


def test_a_record_dated_beyond_the_clock_bound_is_dead_lettered() -> None:
    now = 1_795_514_400.0
    ahead = {"source": "a", "signals": {"x": 1.0}}
    limits = Limits(max_future=3600.0)
    good, _ = decode(orjson.dumps({**ahead, "ts": now + 3000}), ORIGIN, limits, now=now)
    assert len(good) == 1
    with pytest.raises(Invalid) as info:
        decode(orjson.dumps({**ahead, "ts": "2099-01-01T00:00:00Z"}), ORIGIN, limits, now=now)
    assert info.value.reason == "ts_in_future" and "ahead" in str(info.value)
    array = orjson.dumps([{**ahead, "ts": now}, {**ahead, "ts": now + 7200}])
    good, bad = decode(array, ORIGIN, limits, now=now)
    assert len(good) == 1 and [b.error.reason for b in bad] == ["ts_in_future"]
    # without a clock (offline files) or with the bound off, the future is only 2100
    assert decode(array, ORIGIN, limits)[1] == []
    assert decode(array, ORIGIN, Limits(max_future=0.0), now=now)[1] == []
