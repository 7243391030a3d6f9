"""Telegraf JSON: single and batched metrics, the mapping to records, and the JSON decoder's
limits and reasons (unit tier)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from detectors.records import Invalid, Origin
from streams.codec import Limits
from streams.formats.influx import DEFAULT_OPTIONS, InfluxOptions
from streams.formats.telegraf import decode_telegraf

LIMITS = Limits(max_message_bytes=4096, max_signals=5, max_name_length=20)
ORIGIN = Origin("signals", 1, 42)
METRIC = {
    "fields": {"usage_idle": 97.5, "procs": 3, "up": True},
    "name": "cpu",
    "tags": {"cpu": "cpu-total", "host": "web-1"},
    "timestamp": 1795514400,
}


def reason(obj: Any, options: InfluxOptions = DEFAULT_OPTIONS) -> str:
    try:
        good, bad = decode_telegraf(orjson.dumps(obj), ORIGIN, LIMITS, 1795514400.0, options)
    except Invalid as exc:
        return exc.reason
    assert not good and len(bad) == 1
    return bad[0].error.reason


def test_a_metric_is_one_record() -> None:
    (rec,), bad = decode_telegraf(orjson.dumps(METRIC), ORIGIN, LIMITS)
    assert not bad
    assert rec.source == "cpu/web-1" and rec.origin == ORIGIN
    assert rec.ts == 1795514400.0 and rec.ts_text == "2026-11-24T10:00:00.000Z"
    assert rec.signals == {"usage_idle": 97.5, "procs": 3.0, "up": 1.0}


def test_a_batch_keeps_its_good_metrics_and_names_the_bad_ones() -> None:
    batch = {"metrics": [METRIC, {**METRIC, "fields": "x"}, {**METRIC, "name": "mem"}]}
    good, bad = decode_telegraf(orjson.dumps(batch), ORIGIN, LIMITS)
    assert [(r.source, r.origin.item if r.origin else None) for r in good] == [
        ("cpu/web-1", 0),
        ("mem/web-1", 2),
    ]
    assert [(b.index, b.error.reason) for b in bad] == [(1, "bad_signals")]
    assert bad[0].element == {**METRIC, "fields": "x"}


def test_source_tags_units_and_strings_follow_the_options() -> None:
    options = InfluxOptions(source_tags=("host", "cpu"), json_precision="ms", strings="ignore")
    obj = {**METRIC, "timestamp": 1795514400250, "fields": {"x": 1, "state": "up"}}
    (rec,), _ = decode_telegraf(orjson.dumps(obj), ORIGIN, LIMITS, None, options)
    assert rec.source == "cpu/web-1/cpu-total" and rec.ts == pytest.approx(1795514400.25)
    assert rec.signals == {"x": 1.0}
    assert reason(obj, InfluxOptions(strings="dead_letter")) == "string_field"
    (rec,), _ = decode_telegraf(
        orjson.dumps({**METRIC, "timestamp": "2026-11-24T10:00:00Z"}), ORIGIN, LIMITS
    )  # json_timestamp_format set: RFC 3339 text
    assert rec.ts == 1795514400.0


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ([METRIC], "not_record"),
        ("text", "not_record"),
        ({"metrics": {}}, "not_record"),
        ({"metrics": []}, "empty_array"),
        ({"metrics": [7]}, "not_record"),
        ({**METRIC, "name": None}, "missing_source"),
        ({**METRIC, "name": 5}, "bad_source"),
        ({**METRIC, "name": "n" * 30}, "bad_source"),
        ({**METRIC, "tags": ["a"]}, "bad_tags"),
        ({k: v for k, v in METRIC.items() if k != "fields"}, "missing_signals"),
        ({**METRIC, "fields": {}}, "empty_signals"),
        ({**METRIC, "fields": {"x": [1]}}, "bad_signal_value"),
        ({**METRIC, "fields": {"x": 1e300}}, "bad_signal_value"),
        ({**METRIC, "fields": {f"f{i}": i for i in range(6)}}, "too_many_signals"),
        ({k: v for k, v in METRIC.items() if k != "timestamp"}, "missing_ts"),
        ({**METRIC, "timestamp": 1795514400 * 1000}, "bad_ts"),  # ms without the setting
        ({**METRIC, "timestamp": 1795514400 + 7 * 86400}, "ts_in_future"),
    ],
)
def test_every_bad_kind_has_its_reason(obj: Any, expected: str) -> None:
    assert reason(obj) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, "empty"), (b"{", "invalid_json"), (b'{"name": "\xff"}', "bad_utf8")],
)
def test_whole_message_reasons(raw: bytes | None, expected: str) -> None:
    with pytest.raises(Invalid) as info:
        decode_telegraf(raw, ORIGIN, LIMITS)
    assert info.value.reason == expected
