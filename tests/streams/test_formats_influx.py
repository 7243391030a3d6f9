"""Influx line protocol: the spec's syntax and escapes, the mapping to records, one bad line
dead-lettered alone, and the JSON decoder's limits and reasons (unit tier)."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.records import Invalid, Origin
from streams.codec import Limits
from streams.formats.influx import DEFAULT_OPTIONS, InfluxOptions, decode_influx, parse_line

LIMITS = Limits(max_message_bytes=4096, max_signals=5, max_name_length=20)
ORIGIN = Origin("signals", 1, 42)
NS = 1_795_514_400_250_000_000  # 2026-11-24T10:00:00.250Z


def one(line: str, options: InfluxOptions = DEFAULT_OPTIONS, now: float | None = None) -> Any:
    """The record a one-line message makes, or the reason it is dead-lettered."""
    good, bad = decode_influx(line.encode(), ORIGIN, LIMITS, now, options)
    assert len(good) + len(bad) == 1
    return good[0] if good else bad[0].error.reason


def test_a_telegraf_line_is_one_record() -> None:
    rec = one(f"cpu,host=web-1,cpu=cpu0 usage_user=1.5,procs=3i,free=7u,up=t,off=F {NS}")
    assert rec.source == "cpu/web-1"
    assert rec.ts == pytest.approx(1795514400.25) and rec.ts_text == "2026-11-24T10:00:00.250Z"
    assert rec.signals == {"usage_user": 1.5, "procs": 3.0, "free": 7.0, "up": 1.0, "off": 0.0}
    assert rec.origin == Origin("signals", 1, 42, 0)


@pytest.mark.parametrize(
    ("tags", "source"),
    [
        ((), "cpu"),
        (("host",), "cpu/web-1"),
        (("host", "device"), "cpu/web-1/sda"),
        (("rack", "device"), "cpu/sda"),
    ],
)
def test_the_source_is_the_measurement_and_the_source_tags(
    tags: tuple[str, ...], source: str
) -> None:
    rec = one(f"cpu,host=web-1,device=sda x=1 {NS}", InfluxOptions(source_tags=tags))
    assert rec.source == source


ESCAPES = [
    (r"my\ cpu,my\,tag=a\ b\=c x=1", "my cpu", {"my,tag": "a b=c"}, {"x": 1.0}),
    (r'm f\ 1\,x\=y="say \"hi\" \\ ok"', "m", {}, {"f 1,x=y": 'say "hi" \\ ok'}),
    ('m s="a b,c=d",n=2', "m", {}, {"s": "a b,c=d", "n": 2.0}),
    (r'm path="C:\temp"', "m", {}, {"path": "C:\\temp"}),
    (r"m\=x,t=v x=1", "m\\=x", {"t": "v"}, {"x": 1.0}),  # `=` needs no escape there
    ("m x=-1.5e3,y=-4i,z=1.", "m", {}, {"x": -1500.0, "y": -4.0, "z": 1.0}),
    ("m b1=true,b2=FALSE,b3=T,b4=f", "m", {}, {"b1": 1.0, "b2": 0.0, "b3": 1.0, "b4": 0.0}),
    ('"m",t="a\\ b" s="x y",q"=2', '"m"', {"t": '"a b"'}, {"s": "x y", 'q"': 2.0}),
    ("m   x=1", "m", {}, {"x": 1.0}),
]


@pytest.mark.parametrize(("line", "name", "tags", "fields"), ESCAPES)
def test_the_specs_escapes(
    line: str, name: str, tags: dict[str, str], fields: dict[str, Any]
) -> None:
    got = parse_line(line)
    assert got[:3] == (name, tags, fields) and got[3] is None


BAD_LINES = [
    "cpu",  # no fields
    "cpu,host=a",  # no fields
    "cpu x",  # no value
    "cpu x=",  # empty value
    "cpu =1",  # no key
    "cpu,host x=1",  # tag without value
    "cpu,host= x=1",
    ",host=a x=1",  # no measurement
    "cpu x=1 notatime",
    "cpu x=1 1_000",
    "cpu x=1_0",
    "cpu x=1 2 3",
    'cpu x="open',
    "cpu x=yes",
    "cpu x=-3u",
    "cpu x=3.5i",
]


@pytest.mark.parametrize("line", BAD_LINES)
def test_bad_lines_are_bad_line_protocol(line: str) -> None:
    assert one(line + f" {NS}" if line.endswith("=1") else line, now=1.8e9) == "bad_line_protocol"


def test_strings_are_ignored_or_dead_lettered() -> None:
    line = f'svc,host=a state="up",latency=3 {NS}'
    assert one(line).signals == {"latency": 3.0}
    assert one(line, InfluxOptions(strings="dead_letter")) == "string_field"
    assert one(f'svc state="up" {NS}') == "empty_signals"  # nothing left to score


@pytest.mark.parametrize(
    ("precision", "stamp"),
    [("ns", NS), ("us", NS // 1000), ("ms", NS // 1_000_000), ("s", NS // 10**9)],
)
def test_timestamp_precision(precision: str, stamp: int) -> None:
    rec = one(f"m x=1 {stamp}", InfluxOptions(precision=precision))  # type: ignore[arg-type]
    assert rec.ts == pytest.approx(1795514400.25 if precision != "s" else 1795514400.0)


def test_a_line_without_timestamp_takes_the_messages_time() -> None:
    assert one("m x=1", now=1795514400.0).ts == 1795514400.0
    assert one("m x=1") == "missing_ts"  # offline, no clock


def test_one_bad_line_dead_letters_that_line_only() -> None:
    raw = (
        f"# a comment\r\ncpu,host=a x=1 {NS}\n\ncpu,host=a x=oops {NS}\n"
        f"cpu,host=b x=2 {NS}\n".encode()
    )
    good, bad = decode_influx(raw, ORIGIN, LIMITS)
    assert [(r.source, r.origin.item if r.origin else None) for r in good] == [
        ("cpu/a", 1),
        ("cpu/b", 4),
    ]
    assert [(b.index, b.element, b.error.reason) for b in bad] == [
        (3, f"cpu,host=a x=oops {NS}".encode(), "bad_line_protocol")
    ]


def test_a_line_that_is_not_utf8_is_dead_lettered_alone() -> None:
    raw = f"m x=1 {NS}\n".encode() + b"m\xff x=1\n"
    good, bad = decode_influx(raw, ORIGIN, LIMITS)
    assert len(good) == 1 and [(b.index, b.element, b.error.reason) for b in bad] == [
        (1, b"m\xff x=1", "bad_utf8")
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (f"m,host={'h' * 30} x=1 {NS}", "bad_source"),
        (f"m a=1,b=2,c=3,d=4,e=5,f=6 {NS}", "too_many_signals"),
        (f"m {'s' * 30}=1 {NS}", "bad_signal_name"),
        (f"m x=1e300 {NS}", "bad_signal_value"),
        (f"m x=NaN {NS}", "bad_signal_value"),
        (f"m x=-Infinity {NS}", "bad_signal_value"),
        ("m x=1 -5", "bad_ts"),
        (f"m x=1 {NS * 10}", "bad_ts"),
        (f"m x=1 {NS + 7 * 86400 * 10**9}", "ts_in_future"),
    ],
)
def test_the_json_limits_and_reasons_hold(line: str, reason: str) -> None:
    assert one(line, now=1795514400.0) == reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        (b"", "empty_array"),
        (b"# only\n\n", "empty_array"),
        (b"m x=1\n" * 1000, "too_large"),
    ],
)
def test_whole_message_reasons(raw: bytes | None, reason: str) -> None:
    with pytest.raises(Invalid) as info:
        decode_influx(raw, ORIGIN, LIMITS, 1.8e9)
    assert info.value.reason == reason


def test_it_agrees_with_line_protocol_parser() -> None:
    """The C parser on PyPI, where installed (not a dependency: `bench/formats.py`), reads
    every line of these tests as ours does; it refuses NaN and Inf, which we dead-letter as
    `bad_signal_value`."""
    theirs = pytest.importorskip("line_protocol_parser")
    lines = [line for line, *_ in ESCAPES] + [line for line in BAD_LINES if "=1" not in line]
    for line in lines:
        try:
            ours: Any = parse_line(line)
        except Invalid:
            ours = None
        try:
            got = theirs.parse_line(line)
            other: Any = (got["measurement"], got["tags"], got["fields"], got["time"])
        except theirs.LineFormatError:
            other = None
        if other is not None:  # their ints and booleans are our floats
            other = (
                *other[:2],
                {k: v if type(v) is str else float(v) for k, v in other[2].items()},
                other[3],
            )
        assert ours == other, line
