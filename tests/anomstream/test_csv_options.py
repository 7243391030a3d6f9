"""The commands that read a CSV read it alike: the same options, the same help, the same ranges,
and the reader's warnings on stderr (issue 26)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click
import orjson
import pytest
from click.testing import CliRunner

from anomstream.cli import cli
from tests.anomstream.test_cli import anomstream

READERS = ("train", "evaluate", "detect", "warmup", "replay")
SHARED = ("--sep", "--ignore", "--label-col", "--time-col", "--row-numbers", "--source-col")


def option(command: str, name: str) -> click.Option:
    found = [p for p in cli.commands[command].params if name in getattr(p, "opts", ())]
    assert len(found) == 1, f"{command} has no {name}"
    assert isinstance(found[0], click.Option)
    return found[0]


@pytest.mark.parametrize("name", [*SHARED, "--signals"])
def test_every_command_that_reads_a_csv_has_the_same_reading_option(name: str) -> None:
    helps = {command: option(command, name).help for command in READERS}
    assert len(set(helps.values())) == 1, helps


def test_the_time_column_help_says_what_the_default_is() -> None:
    text = option("replay", "--time-col").help or ""
    assert "timestamp/ts/time/datetime/date" in text and "first column if it holds times" in text


def test_target_fap_has_one_range_everywhere() -> None:
    ranges = set()
    for command in ("train", "evaluate", "detect"):
        kind = option(command, "--target-fap").type
        assert isinstance(kind, click.FloatRange)
        ranges.add((kind.min, kind.max, kind.min_open, kind.max_open))
    assert ranges == {(1e-9, 0.5, False, True)}


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_replay_refuses_a_file_without_a_time_column_before_it_connects(tmp_path: Path) -> None:
    data = write(tmp_path / "bare.csv", ["temp,pressure", "71.2,3.1", "71.3,3.0"])
    done = anomstream("replay", str(data), "--broker", "127.0.0.1:1")
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("anomstream: error: ") and "no time column" in line
    assert "--row-numbers" in line and "cannot reach" not in line


def test_replay_prints_the_readers_warnings(tmp_path: Path) -> None:
    lines = ["timestamp,temp,changepoint"]
    lines += [f"{1795514400 + i},{'ERR' if i == 4 else 70 + i},0" for i in range(20)]
    done = anomstream("replay", str(write(tmp_path / "d.csv", lines)), "--broker", "127.0.0.1:1")
    assert done.returncode == 1  # no broker: the warnings come first
    warnings = [w for w in done.stderr.splitlines() if w.startswith("anomstream: warning: ")]
    assert len(warnings) == 2, done.stderr
    assert "column 'temp': 1 of 20" in warnings[0] and "line 6" in warnings[0]
    assert "column 'changepoint'" in warnings[1] and "--ignore changepoint" in warnings[1]


class FakeProducer:
    """What `replay` sends, kept in memory (the broker lane tests the real one)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict[str, Any]]] = []
        self.stopped = False

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        self.sent.append((topic, key, orjson.loads(value)))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> FakeProducer:
    fake = FakeProducer()

    async def start(settings: Any) -> FakeProducer:
        return fake

    monkeypatch.setattr("anomstream.replay.start_producer", start)
    return fake


def test_replay_reads_the_file_as_detect_does(tmp_path: Path, producer: FakeProducer) -> None:
    lines = ["temp;pressure;site;changepoint"]
    lines += [f"{70 + i};{'' if i == 1 else 3};north;0" for i in range(5)]
    data = write(tmp_path / "bare.csv", lines)
    args = ["replay", str(data), "--rate", "0", "--row-numbers", "--ignore", "changepoint"]
    done = CliRunner().invoke(cli, [*args, "--source", "pump-9", "--limit", "4"])
    assert done.exit_code == 0, done.output
    assert "produced 4 records" in done.output
    assert producer.stopped
    topics = {topic for topic, _, _ in producer.sent}
    assert topics == {done.output.strip().rsplit(" to ", 1)[1]}
    assert [key for _, key, _ in producer.sent] == [b"pump-9"] * 4
    first, second = producer.sent[0][2], producer.sent[1][2]
    assert first == {
        "source": "pump-9",
        "ts": "1970-01-01T00:00:00.000Z",
        "signals": {"temp": 70.0, "pressure": 3.0},  # `site` is text, `changepoint` ignored
    }
    assert second["ts"] == "1970-01-01T00:00:01.000Z"
    assert second["signals"] == {"temp": 71.0, "pressure": None}


def test_replay_takes_the_signals_it_is_told(tmp_path: Path, producer: FakeProducer) -> None:
    lines = ["ts,temp,pressure"] + [f"{1795514400 + i},{70 + i},3" for i in range(3)]
    data = write(tmp_path / "d.csv", lines)
    done = CliRunner().invoke(cli, ["replay", str(data), "--rate", "0", "--signals", "temp"])
    assert done.exit_code == 0, done.output
    assert [m["signals"] for _, _, m in producer.sent] == [
        {"temp": 70.0},
        {"temp": 71.0},
        {"temp": 72.0},
    ]
    assert {m["source"] for _, _, m in producer.sent} == {"csv"}  # the default --source
