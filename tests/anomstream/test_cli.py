"""Users get one line and a non-zero exit for what they can fix, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def anomstream(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it (its own process): exit code, stdout, stderr."""
    return subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [sys.executable, "-m", "anomstream", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["worker", "--broker", "127.0.0.1:1", "--startup-wait", "1"],
            "cannot reach the Kafka broker",
        ),
        (["worker", "--broker", "no-port"], "broker"),
        (["replay", "/nonexistent/data.csv", "--broker", "127.0.0.1:1"], "file not found"),
        (["tail", "--broker", "127.0.0.1:1"], "cannot reach the Kafka broker"),
        (["demo", "--duration", "1"], "--duration"),
        (["worker", "--config", "/nonexistent.toml"], "config file not found"),
        (["nonsense"], "No such command"),
    ],
)
def test_user_errors_are_one_line(args: list[str], needle: str) -> None:
    result = anomstream(*args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    # the worker also logs, once, that it is waiting for the broker
    assert len(lines) == (2 if args[0] == "worker" and "wait" in result.stderr else 1), (
        result.stderr
    )
    assert needle in lines[-1]
    assert lines[-1].startswith("anomstream: error: "), "one prefix for every user error"
    assert "Traceback" not in result.stderr


def test_replay_names_the_bad_line(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("timestamp,temp\n2026-11-24T10:00:00Z,1.5\n2026-11-24T10:00:01Z,hot\n")
    from detectors.csvdata import CsvError, layout, rows

    spec = layout(data)
    with pytest.raises(CsvError, match=r"d.csv:3: column 'temp': 'hot' is not a number"):
        list(rows(data, spec, "x"))


def test_help_lists_the_commands() -> None:
    result = anomstream("--help")
    assert result.returncode == 0
    for command in ("worker", "broker", "replay", "tail", "demo"):
        assert command in result.stdout


def test_a_mistyped_variable_is_reported_before_the_command_runs() -> None:
    import os

    env = {**os.environ, "ANOMSTREAM_TOPIC_SCORE": "mine"}
    result = anomstream("replay", "/nonexistent/data.csv", env=env)
    assert result.returncode != 0
    first, last = result.stderr.strip().splitlines()
    assert first == (
        "anomstream: warning: ANOMSTREAM_TOPIC_SCORE is not a setting "
        "(did you mean ANOMSTREAM_TOPIC_SCORES?)"
    )
    assert "file not found" in last


def leaf_commands() -> list[tuple[str, ...]]:
    import click

    from anomstream.cli import cli

    found: list[tuple[str, ...]] = []

    def walk(group: click.Group, path: tuple[str, ...]) -> None:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                walk(command, (*path, name))
            else:
                found.append((*path, name))

    walk(cli, ())
    return found


@pytest.mark.parametrize("path", leaf_commands(), ids=" ".join)
def test_every_command_help_shows_an_example(path: tuple[str, ...]) -> None:
    from click.testing import CliRunner

    from anomstream.cli import cli

    shown = CliRunner().invoke(cli, [*path, "--help"])
    assert shown.exit_code == 0, shown.output
    assert "Examples:" in shown.output, f"`anomstream {' '.join(path)} --help` shows no example"
    assert f"anomstream {' '.join(path)}" in shown.output.split("Examples:")[1]
