"""`anomstream plant --to-csv`: the sample files the README's commands train and score on."""

from __future__ import annotations

import csv
from pathlib import Path

from click.testing import CliRunner

from anomstream.cli import cli
from anomstream.plant import SIGNALS, Plant
from anomstream.samples import START_TS, write_plant_csv


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_normal_file_has_a_time_a_source_and_every_signal_and_no_label(tmp_path: Path) -> None:
    done = write_plant_csv(tmp_path / "plant.csv", rows=600, anomalies=False)
    rows = read(tmp_path / "plant.csv")
    assert done.rows == len(rows) == 600
    assert list(rows[0]) == ["timestamp", "source", *SIGNALS]
    assert {r["source"] for r in rows} == {"pump-1", "pump-2", "pump-3"}
    assert rows[0]["timestamp"] == "2026-11-24T10:00:00.000Z"


def test_labels_cover_exactly_the_injected_windows_and_name_the_signal(tmp_path: Path) -> None:
    done = write_plant_csv(tmp_path / "labelled.csv", rows=3000, anomalies=True, sources=1)
    rows = read(tmp_path / "labelled.csv")
    schedule = Plant(sources=1, rate=300.0, duration=10.0, seed=7).schedule()
    assert done.anomalous == sum(r["anomaly"] == "1" for r in rows) > 0
    for r, k in zip(rows, range(len(rows)), strict=True):
        t = k / 300.0  # one source: record k at k / rate seconds
        inside = [i for i in schedule if i.start <= t < i.end]
        assert r["anomaly"] == ("1" if inside else "0")
        assert r["culprit"] == (inside[0].signal if inside else "")
    assert {r["culprit"] for r in rows} - {""} == {i.signal for i in schedule}
    assert START_TS == 1_795_514_400.0


def test_the_command_writes_the_file_and_refuses_to_overwrite_without_force(
    tmp_path: Path,
) -> None:
    out = tmp_path / "labelled.csv"
    runner = CliRunner()
    args = ["plant", "--to-csv", str(out), "--rows", "900", "--anomalies"]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "wrote 900 records of 3 pumps" in first.output and "labelled anomalous" in first.output
    again = runner.invoke(cli, args)
    assert again.exit_code != 0 and "exists" in again.output and "--force" in again.output
    forced = runner.invoke(cli, [*args, "--force", "--rows", "300"])
    assert forced.exit_code == 0 and len(read(out)) == 300
