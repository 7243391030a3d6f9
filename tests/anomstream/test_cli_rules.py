"""`anomstream rules check`: a rules file validated, and how often its rules fail on a CSV."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from anomstream.cli_rules import rules

RULES = """
[[rules]]
name = "temp_too_high"
expr = "temp < 100"
severity = "high"

[[rules]]
name = "pump_pressure"
expr = "abs(pressure - 3) < 0.5 and s(\\"flow rate\\") > 0"
sources = "pump-*"

[[rules]]
name = "night_vibration"
expr = "hour >= 6 or vibration < 1"
"""

CSV = """timestamp,source,temp,pressure,flow rate
2026-01-01T00:00:00Z,pump-1,50,3.0,1
2026-01-01T01:00:00Z,pump-1,150,3.9,1
2026-01-01T02:00:00Z,fan-1,150,9.0,1
2026-01-01T03:00:00Z,pump-2,,3.1,
"""


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "rules.toml").write_text(RULES)
    (tmp_path / "data.csv").write_text(CSV)
    return tmp_path / "rules.toml", tmp_path / "data.csv"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(rules, [str(a) for a in args], terminal_width=160)


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def row(output: str, name: str) -> list[str]:
    """The cells of the table row of rule `name`."""
    line = next(line for line in output.splitlines() if f" {name} " in line)
    return [cell.strip() for cell in re.split(r"[│┃|]", line) if cell.strip()]


def test_a_valid_file_is_listed(files: tuple[Path, Path]) -> None:
    result = run("check", files[0])
    assert result.exit_code == 0, result.output
    assert row(result.stdout, "temp_too_high")[:3] == ["temp_too_high", "high", "*"]
    assert row(result.stdout, "pump_pressure")[:3] == ["pump_pressure", "medium", "pump-*"]
    assert "3 rules, all valid" in result.stdout


def test_with_data_it_counts_failures_and_unknowns(files: tuple[Path, Path]) -> None:
    rules_file, data = files
    result = run("check", rules_file, "--data", data)
    assert result.exit_code == 0, result.output
    # rows it applies to, failed, unknown
    assert row(result.stdout, "temp_too_high")[1:4] == ["4", "2 (50.0 %)", "1 (25.0 %)"]
    assert row(result.stdout, "pump_pressure")[1:4] == ["3", "1 (33.3 %)", "1 (33.3 %)"]
    # vibration is not a column: unknown at night, whatever the hour is not
    assert row(result.stdout, "night_vibration")[1:4] == ["4", "0 (0.0 %)", "4 (100.0 %)"]
    assert "night_vibration reads vibration, not in" in result.stdout
    assert "4 rows" in result.stdout


def test_hour_in_a_timezone(files: tuple[Path, Path], tmp_path: Path) -> None:
    only = tmp_path / "night.toml"
    only.write_text('[[rules]]\nname = "day_only"\nexpr = "hour >= 6 and temp > 0"\n')
    utc = run("check", only, "--data", files[1])
    # 00-03 UTC: false at every row, even where temp is missing (false and unknown is false)
    assert row(utc.stdout, "day_only")[1:3] == ["4", "4 (100.0 %)"]
    tokyo = run("check", only, "--data", files[1], "--timezone", "Asia/Tokyo")  # 09-12 local
    assert row(tokyo.stdout, "day_only")[1:3] == ["4", "0 (0.0 %)"]


def test_reading_options_pass_on(files: tuple[Path, Path], tmp_path: Path) -> None:
    data = tmp_path / "semi.csv"
    data.write_text(CSV.replace(",", ";"))
    result = run("check", files[0], "--data", data, "--sep", ";", "--signals", "temp")
    assert row(result.stdout, "temp_too_high")[1:4] == ["4", "2 (50.0 %)", "1 (25.0 %)"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[[rules]]\nname = "a"\nexpr = "x.y < 1"\n', "rule 'a': column 1: not allowed: attribute"),
        ('[[rules]]\nname = "a"\nexpr = "x < 1"\n[[rules]]\nname = "a"\nexpr = "y < 1"\n', "twice"),
        ('[[rules]]\nname = "a"\nexpr = "open(1) < 1"\n', "calling 'open'"),
        ("[[rules]\n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_one_line(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    assert needle in one_line_error(run("check", path))


def test_missing_files_and_bad_options_are_one_line(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    assert "rules file not found" in one_line_error(run("check", tmp_path / "nope.toml"))
    assert "file not found" in one_line_error(run("check", files[0], "--data", tmp_path / "x.csv"))
    bad_zone = run("check", files[0], "--timezone", "Mars/Olympus")
    assert "Mars/Olympus" in one_line_error(bad_zone)


def test_the_error_is_a_click_exception_for_the_entry_point(tmp_path: Path) -> None:
    """`anomstream.cli.main` prints ClickExceptions as `anomstream: error: ...`."""
    with pytest.raises(click.ClickException) as caught:
        rules.main(["check", str(tmp_path / "nope.toml")], standalone_mode=False)
    assert caught.value.format_message().startswith("rules file not found")


def test_the_example_rules_fit_the_demo_plant(tmp_path: Path) -> None:
    """examples/rules.toml (README) is valid, reads only the plant's signals, and fails only
    where the plant was made to misbehave: never on a normal run."""
    from anomstream.cli_plant import plant

    example = Path(__file__).parents[2] / "examples" / "rules.toml"
    for anomalies, name in ((True, "p.csv"), (False, "normal.csv")):
        flags = ["--anomalies"] if anomalies else []
        made = CliRunner().invoke(
            plant, ["--to-csv", str(tmp_path / name), "--rows", "2000", *flags]
        )
        assert made.exit_code == 0, made.output
    result = run("check", example, "--data", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    assert "all valid" in result.stdout and "not in" not in result.stdout
    assert row(result.stdout, "temp_too_high")[2] != "0 (0.0 %)"  # the injected anomalies
    normal = run("check", example, "--data", tmp_path / "normal.csv")
    assert normal.exit_code == 0, normal.output
    for name in ("temp_too_high", "pressure_band", "speed_range", "running_dry"):
        assert row(normal.stdout, name)[2:4] == ["0 (0.0 %)", "0 (0.0 %)"], normal.stdout
