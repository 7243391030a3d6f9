"""The benchmark runners never end with a traceback: a missing data folder or a bad file is one
line and a non-zero exit, before any model is trained or any corpus scored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.nab import runner as nab_runner
from bench.skab import runner as skab_runner

ROOT = Path(__file__).resolve().parents[2]
SKAB_HEADER = (
    "datetime;Accelerometer1RMS;Accelerometer2RMS;Current;Pressure;Temperature;Thermocouple;"
    "Voltage;Volume Flow RateRMS;anomaly;changepoint"
)


def skab_rows(n: int) -> str:
    rows = [
        f"2020-03-09 10:{i // 60:02d}:{i % 60:02d};0.02;0.03;{i % 7};0.1;70.{i % 9};25;230;32;0;0"
        for i in range(n)
    ]
    return "\n".join([SKAB_HEADER, *rows]) + "\n"


def skab_folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "skab" / "data" / "valve1"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return tmp_path


def nab_folder(tmp_path: Path, files: dict[str, str], windows: str | None = None) -> Path:
    root = tmp_path / "nab"
    for key, text in files.items():
        (root / "data" / key).parent.mkdir(parents=True, exist_ok=True)
        (root / "data" / key).write_text(text)
    (root / "config").mkdir(parents=True)
    (root / "config" / "profiles.json").write_text(PROFILES)
    if windows is not None:
        (root / "labels").mkdir()
        (root / "labels" / "combined_windows.json").write_text(windows)
    return tmp_path


PROFILES = """{"standard": {"CostMatrix": {"tpWeight": 1.0, "fpWeight": 0.11, "fnWeight": 1.0}},
"reward_low_FP_rate": {"CostMatrix": {"tpWeight": 1.0, "fpWeight": 0.22, "fnWeight": 1.0}},
"reward_low_FN_rate": {"CostMatrix": {"tpWeight": 1.0, "fpWeight": 0.11, "fnWeight": 2.0}}}"""
GOOD_NAB = "timestamp,value\n" + "".join(f"2024-01-01 00:{m:02d}:00,{m % 5}\n" for m in range(60))


def one_line_error(runner_main: object, args: list[str], needle: str) -> None:
    result = CliRunner().invoke(runner_main, args)  # type: ignore[arg-type]
    assert result.exit_code == 1, result.output
    assert type(result.exception) is SystemExit, result.exception  # not a crash
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert needle in lines[0], lines[0]


@pytest.mark.parametrize("runner_main", [skab_runner.main, nab_runner.main])
def test_a_missing_data_folder_is_one_line(runner_main: object, tmp_path: Path) -> None:
    one_line_error(runner_main, ["--data", str(tmp_path / "nowhere")], "benchmark data not found")


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ({}, "no SKAB valve1 files"),
        ({"0.csv": "datetime;a;anomaly\nfoo;bar;1\n", "1.csv": skab_rows(500)}, "0.csv: "),
        ({"0.csv": skab_rows(500), "1.csv": skab_rows(50)}, "1.csv: 50 rows"),
        ({"0.csv": skab_rows(500), "x.csv": b"\xff\xfe\x00".decode("latin-1")}, "x.csv: "),
        ({"0.csv": skab_rows(500)}, "at least two files"),
    ],
)
def test_a_bad_skab_folder_is_one_line(tmp_path: Path, files: dict[str, str], needle: str) -> None:
    if not files:
        (tmp_path / "skab" / "data" / "valve1").mkdir(parents=True)
    else:
        skab_folder(tmp_path, files)
    one_line_error(skab_runner.main, ["--data", str(tmp_path)], needle)


@pytest.mark.parametrize(
    ("files", "windows", "needle"),
    [
        ({}, "{}", "no NAB files"),
        ({"cat/a.csv": "timestamp,value\n2024-01-01 00:00:00,x\n"}, "{}", "a.csv, line 2"),
        ({"cat/a.csv": "timestamp,value\nyesterday,1\n"}, "{}", "a.csv, line 2"),
        ({"cat/a.csv": "timestamp,value\n"}, "{}", "a.csv: no data rows"),
        ({"cat/a.csv": GOOD_NAB}, None, "NAB labels or profiles"),
        ({"cat/a.csv": GOOD_NAB}, "{not json", "NAB labels or profiles"),
        ({"cat/a.csv": GOOD_NAB}, "{}", "without an entry in labels/combined_windows.json"),
        (
            {"cat/a.csv": GOOD_NAB},
            '{"cat/a.csv": [["2024-01-01 00:10:00", "2024-01-02 00:00:00"]]}',
            "cat/a.csv: window end",
        ),
    ],
)
def test_a_bad_nab_folder_is_one_line(
    tmp_path: Path, files: dict[str, str], windows: str | None, needle: str
) -> None:
    root = nab_folder(tmp_path, files, windows)
    if not files:
        (root / "nab" / "data").mkdir(parents=True, exist_ok=True)
    one_line_error(nab_runner.main, ["--data", str(root)], needle)


@pytest.mark.parametrize("module", ["bench.skab.runner", "bench.nab.runner"])
def test_the_runner_module_exits_with_one_line_and_no_traceback(
    module: str, tmp_path: Path
) -> None:
    skab_folder(tmp_path, {"0.csv": "datetime;a;anomaly\nfoo;bar;1\n", "1.csv": skab_rows(500)})
    nab_folder(tmp_path, {"cat/a.csv": "timestamp,value\n2024-01-01 00:00:00,x\n"}, "{}")
    done = subprocess.run(
        [sys.executable, "-m", module, "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stdout == ""
