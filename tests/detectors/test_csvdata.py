"""The CSV reader refuses what it would mis-read and says what it read oddly (issue 26).

Every case here exited 0 and misled a newcomer before: a file without a time column, text
cells that dropped a column, ragged rows, a label column read as a signal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detectors.csvdata import CsvError, layout, read_table, rows
from tests.coupled import coupled, write_csv


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_clean_file_reads_without_a_warning(tmp_path: Path) -> None:
    table = read_table(write_csv(tmp_path / "d.csv", coupled(50, seed=1)))
    assert table.signals == ("a", "b", "c")
    assert table.warnings == ()


def test_a_file_without_a_time_column_stops_and_names_the_fix(tmp_path: Path) -> None:
    data = write(tmp_path / "bare.csv", ["temp,pressure", "71.2,3.1", "71.3,3.0", "71.1,3.2"])
    with pytest.raises(CsvError) as caught:
        read_table(data)
    message = str(caught.value)
    assert "\n" not in message
    assert "no time column" in message and "'temp'" in message
    assert "--time-col" in message and "--row-numbers" in message


@pytest.mark.parametrize(
    "first",
    [
        ["7", "3", "9", "1"],  # small numbers: a signal, not epoch seconds
        ["1795514400", "1795514300", "1795514200", "1795514100"],  # epochs running backwards
        ["pump-1", "pump-2", "pump-1", "pump-2"],  # text that is no time
        ["", "", "", ""],  # nothing at all
    ],
)
def test_a_first_column_that_holds_no_times_is_refused(tmp_path: Path, first: list[str]) -> None:
    data = write(tmp_path / "d.csv", ["when,temp", *(f"{v},{70 + i}" for i, v in enumerate(first))])
    with pytest.raises(CsvError, match="no time column"):
        read_table(data)


@pytest.mark.parametrize(
    "first",
    [
        ["1795514400", "1795514401", "1795514402", "1795514403"],
        ["2026-11-24T10:00:00Z", "2026-11-24T10:00:01Z", "2026-11-24 10:00:02", "2026-11-24"],
    ],
)
def test_a_first_column_of_times_is_taken_by_default(tmp_path: Path, first: list[str]) -> None:
    data = write(tmp_path / "d.csv", ["when,temp", *(f"{v},{70 + i}" for i, v in enumerate(first))])
    table = read_table(data)
    assert table.signals == ("temp",)
    assert table.times[0] == pytest.approx(1795514400.0, abs=86400)
    assert table.warnings == ()


def test_a_named_time_column_is_not_probed(tmp_path: Path) -> None:
    # --time-col is the user's word: its cells are read as times, bad ones stop with the line
    data = write(tmp_path / "d.csv", ["temp,when", "70,2026-11-24T10:00:00Z", "71,noon"])
    with pytest.raises(CsvError, match=r"d.csv:3: ts 'noon'"):
        read_table(data, time_col="when")


def test_row_numbers_time_the_rows_by_position(tmp_path: Path) -> None:
    data = write(tmp_path / "bare.csv", ["temp,pressure", "71.2,3.1", "71.3,", "71.1,3.2"])
    table = read_table(data, row_numbers=True)
    assert table.signals == ("temp", "pressure")  # the first column is a signal now
    assert table.times.tolist() == [0.0, 1.0, 2.0]
    assert table.ts_text[0] == "1970-01-01T00:00:00.000Z"
    assert table.ts_text[2] == "1970-01-01T00:00:02.000Z"
    assert np.isnan(table.values[1, 1])
    # the same through the row iterator (`replay`)
    spec = layout(data, row_numbers=True)
    assert [r.ts for r in rows(data, spec, "x")] == [0.0, 1.0, 2.0]


def test_row_numbers_leave_out_a_time_named_column_and_refuse_a_time_col(tmp_path: Path) -> None:
    data = write(tmp_path / "d.csv", ["temp,ts", "71.2,1795514400", "71.3,1795514401"])
    table = read_table(data, row_numbers=True)
    assert table.signals == ("temp",)  # epoch numbers, but never a signal
    assert table.times.tolist() == [0.0, 1.0]
    with pytest.raises(CsvError, match="not both"):
        read_table(data, row_numbers=True, time_col="ts")


def test_a_few_text_cells_are_read_as_missing_with_one_warning(tmp_path: Path) -> None:
    lines = ["timestamp,temp,site"]
    for i in range(40):
        temp = "ERR" if i in (3, 17) else f"{70 + i * 0.1:.1f}"
        lines.append(f"{1795514400 + i},{temp},north")
    table = read_table(write(tmp_path / "d.csv", lines))
    assert table.signals == ("temp",)  # kept: 38 of 40 cells are numbers; `site` is text
    assert np.isnan(table.values[3, 0]) and np.isnan(table.values[17, 0])
    assert table.values[4, 0] == pytest.approx(70.4)
    assert len(table.warnings) == 1, table.warnings
    (warning,) = table.warnings
    assert "column 'temp'" in warning and "2 of 40" in warning
    assert "lines 5, 19" in warning and "missing" in warning


def test_a_mostly_text_column_is_left_out_with_a_warning(tmp_path: Path) -> None:
    lines = ["timestamp,temp,state"]
    for i in range(20):
        state = str(i % 3) if i < 6 else "running"
        lines.append(f"{1795514400 + i},{70 + i},{state}")
    table = read_table(write(tmp_path / "d.csv", lines))
    assert table.signals == ("temp",)
    (warning,) = table.warnings
    assert (
        "column 'state'" in warning and "14 of 20" in warning and "not read as a signal" in warning
    )
    assert "--ignore state" in warning


def test_named_signals_with_text_cells_keep_the_rule(tmp_path: Path) -> None:
    lines = ["timestamp,temp"] + [f"{1795514400 + i},{'x' if i % 2 else i}" for i in range(10)]
    with pytest.raises(CsvError, match=r"column 'temp': 5 of 10 cells are not numbers"):
        read_table(write(tmp_path / "d.csv", lines), signals=("temp",))


def test_an_empty_column_is_named(tmp_path: Path) -> None:
    lines = ["timestamp,temp,pressure"] + [f"{1795514400 + i},{70 + i}," for i in range(5)]
    table = read_table(write(tmp_path / "d.csv", lines))
    assert table.signals == ("temp", "pressure")  # a missing signal: null when replayed
    assert np.isnan(table.values[:, 1]).all()
    (warning,) = table.warnings
    assert "column 'pressure'" in warning and "empty" in warning and "missing" in warning


def test_ragged_rows_are_counted_with_their_lines(tmp_path: Path) -> None:
    lines = ["timestamp,a,b,c"]
    for i in range(12):
        cells = [str(1795514400 + i), "1.0", "2.0", "3.0"]
        if i in (2, 7):
            cells = cells[:3]  # too few
        if i == 9:
            cells += ["4.0", "5.0"]  # too many
        lines.append(",".join(cells))
    table = read_table(write(tmp_path / "d.csv", lines))
    assert table.signals == ("a", "b", "c")
    assert np.isnan(table.values[2, 2]) and np.isnan(table.values[7, 2])
    few = [w for w in table.warnings if "fewer" in w]
    many = [w for w in table.warnings if "more" in w]
    assert len(few) == len(many) == 1, table.warnings
    assert "2 rows" in few[0] and "lines 4, 9" in few[0] and "4 cells" in few[0]
    assert "1 row " in many[0] and "line 11" in many[0]


def test_a_trailing_separator_on_every_row_is_no_ragged_row(tmp_path: Path) -> None:
    lines = ["timestamp,a,b,"] + [f"{1795514400 + i},1.0,{i}," for i in range(5)]
    table = read_table(write(tmp_path / "d.csv", lines))
    assert table.signals == ("a", "b")
    assert table.warnings == ()


@pytest.mark.parametrize("name", ["changepoint", "target", "class", "is_outlier"])
def test_a_label_like_column_read_as_a_signal_is_named(tmp_path: Path, name: str) -> None:
    lines = [f"timestamp,temp,{name}"]
    lines += [f"{1795514400 + i},{70 + i % 5},0" for i in range(30)]  # all 0: training data
    table = read_table(write(tmp_path / "d.csv", lines))
    assert table.signals == ("temp", name)
    (warning,) = table.warnings
    assert f"column {name!r}" in warning and "read as a signal" in warning
    assert f"--ignore {name}" in warning and "--label-col" in warning


def test_any_zero_one_column_is_named_unless_a_label_column_is_given(tmp_path: Path) -> None:
    lines = ["timestamp,temp,flag,valve"]
    lines += [f"{1795514400 + i},{70 + i % 5},{int(i > 20)},{i % 2}" for i in range(30)]
    path = write(tmp_path / "d.csv", lines)
    warned = read_table(path).warnings
    assert len(warned) == 2 and "'flag'" in warned[0] and "'valve'" in warned[1]
    assert read_table(path, label_col="flag").warnings == ()  # `valve`: the user chose
    assert read_table(path, ignore=("flag", "valve")).warnings == ()
    assert read_table(path, signals=("temp", "valve")).warnings == ()


def test_the_default_label_column_is_still_a_label(tmp_path: Path) -> None:
    labels = np.zeros(60, dtype=int)
    labels[40:] = 1
    table = read_table(write_csv(tmp_path / "d.csv", coupled(60, seed=2), labels))
    assert table.signals == ("a", "b", "c")
    assert table.labels is not None and int(table.labels.sum()) == 20
    assert table.warnings == ()


def test_default_source_names_rows_without_a_source_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "pump-3.csv", coupled(5, seed=1))
    assert set(read_table(path).sources) == {"pump-3"}
    assert set(read_table(path, default_source="csv").sources) == {"csv"}
