"""Choosing the input format: settings -> `decoder_for` -> the processor's decode step, a bad
line dead-lettered with its own bytes (unit tier)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from detectors.engine import Scorer, ScoringConfig
from detectors.records import Origin
from streams.codec import Limits, decode
from streams.formats import FORMATS, decoder_for, element_bytes
from streams.formats.influx import InfluxOptions
from streams.metrics import Metrics
from streams.processor import Processor
from streams.settings import SettingsError, load_settings
from streams.state import SourceStates
from streams.structs import InMessage
from tests.streams.test_processor import TOPICS, FakeSink, FakeStore, Log

NS = 1_795_514_400_000_000_000
ORIGIN = Origin("signals", 0, 1)


def test_the_defaults_keep_todays_json() -> None:
    s = load_settings(environ={})
    assert s.input.input_format == "json" and decoder_for(s.input.input_format) is decode
    assert s.input.options() == InfluxOptions(("host",), "ns", "ignore", "s")


def test_env_and_file_reach_the_options(tmp_path: Path) -> None:
    env = {
        "ANOMSTREAM_INPUT_FORMAT": "influx",
        "ANOMSTREAM_INFLUX_SOURCE_TAGS": "host, device",
        "ANOMSTREAM_INFLUX_PRECISION": "ms",
        "ANOMSTREAM_INFLUX_STRINGS": "dead_letter",
    }
    s = load_settings(environ=env)
    assert s.input.options() == InfluxOptions(("host", "device"), "ms", "dead_letter", "s")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[anomstream.input]\ninput_format = "telegraf-json"\n'
        'influx_source_tags = []\ntelegraf_timestamp_units = "ns"\n'
    )
    s = load_settings(cfg, environ={})
    assert s.input.input_format == "telegraf-json"
    assert s.input.options() == InfluxOptions((), "ns", "ignore", "ns")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ANOMSTREAM_INPUT_FORMAT": "protobuf"}, "input_format"),
        ({"ANOMSTREAM_INFLUX_PRECISION": "m"}, "influx_precision"),
        ({"ANOMSTREAM_INFLUX_STRINGS": "drop"}, "influx_strings"),
    ],
)
def test_a_bad_choice_is_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=f"invalid setting {message}:"):
        load_settings(environ=env)


SAMPLES = {
    "json": orjson.dumps({"source": "cpu/web-1", "ts": 1795514400, "signals": {"x": 1.5}}),
    "influx": f"cpu,host=web-1 x=1.5 {NS}".encode(),
    "telegraf-json": orjson.dumps(
        {"name": "cpu", "tags": {"host": "web-1"}, "fields": {"x": 1.5}, "timestamp": 1795514400}
    ),
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_makes_the_same_record(fmt: str) -> None:
    (rec,), bad = decoder_for(fmt)(SAMPLES[fmt], ORIGIN, Limits(), None)
    assert not bad
    assert (rec.source, rec.ts, rec.ts_text, rec.signals, rec.origin) == (
        "cpu/web-1",
        1795514400.0,
        "2026-11-24T10:00:00.000Z",
        {"x": 1.5},
        ORIGIN,
    )


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown input format 'protobuf'"):
        decoder_for("protobuf")


def test_the_processor_decodes_its_format_and_dead_letters_a_bad_line_alone() -> None:
    log = Log()
    sink = FakeSink(log)
    scorer, metrics = Scorer(ScoringConfig(warmup=20)), Metrics()
    states = SourceStates(scorer, FakeStore(log), metrics)
    decoder = decoder_for("influx", InfluxOptions(precision="s"))
    proc = Processor(scorer, states, sink, TOPICS, Limits(), metrics, decoder=decoder)
    body = "\n".join(f"cpu,host=a x={i}.5 {1795514400 + i}" for i in range(5))
    body += "\ncpu,host=a x=oops 1795514405\n"
    message = InMessage("signals", 0, 7, b"cpu/a", body.encode())
    report = asyncio.run(proc.process([message]))
    assert (report.scored, report.dead) == (5, 1)
    scores = [orjson.loads(v) for t, _, v, _ in sink.sent if t == "scores"]
    assert [s["source"] for s in scores] == ["cpu/a"] * 5
    ((value, headers),) = [(v, dict(h)) for t, _, v, h in sink.sent if t == "signals.dlq"]
    assert value == b"cpu,host=a x=oops 1795514405"  # the line's own bytes, not JSON
    assert headers["error"].startswith(b"bad_line_protocol: ")
    assert headers["record_index"] == b"5"


@pytest.mark.parametrize(
    ("value", "item", "expected"),
    [
        (b"m x=1 1\nm x=2 2\r\n", 1, b"m x=2 2"),
        (b'[{"source": "a"}, {"source": "b"}]', 1, b'{"source":"b"}'),
        (b'{"metrics": [{"name": "a"}, {"name": "b"}]}', 0, b'{"name":"a"}'),
        (b'{"source": "a", "signals": {}, "metrics": [1]}', 0, None),  # a JSON record: whole
        (b'{"name": "a", "fields": {}}', 0, None),
        (None, 0, b""),
    ],
)
def test_the_element_of_a_refused_record(value: bytes | None, item: int, expected: bytes) -> None:
    assert element_bytes(value, item) == (value if expected is None else expected)


def test_a_record_refused_after_decoding_is_dead_lettered_in_every_format() -> None:
    log = Log()
    sink = FakeSink(log)
    scorer, metrics = Scorer(ScoringConfig(warmup=20)), Metrics()
    states = SourceStates(scorer, FakeStore(log), metrics, max_sources=1)
    proc = Processor(scorer, states, sink, TOPICS, Limits(), metrics, decoder=decoder_for("influx"))
    body = f"cpu,host=a x=1 {NS}\ncpu,host=b x=1 {NS}".encode()
    report = asyncio.run(proc.process([InMessage("signals", 0, 7, b"k", body)]))
    assert (report.scored, report.dead) == (1, 1)
    ((value, headers),) = [(v, dict(h)) for t, _, v, h in sink.sent if t == "signals.dlq"]
    assert value == f"cpu,host=b x=1 {NS}".encode()
    assert headers["error"].startswith(b"too_many_sources: ")
