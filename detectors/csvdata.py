"""Reading the CSV files users bring: one time column, one column per signal, optional source,
label and culprit (the signal that broke, on anomalous rows) columns. Shared by `replay`,
`train`, `evaluate`, `detect` and `warmup`. What it would mis-read stops with a one-line
`CsvError`; what it read oddly comes back in `Table.warnings`, for the commands to print.
"""

from __future__ import annotations

import csv
import math
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path

import numpy as np

from detectors.records import Invalid, Record
from detectors.timestamps import parse_ts

TIME_COLUMNS = ("timestamp", "ts", "time", "datetime", "date")
SOURCE_COLUMNS = ("source", "source_id", "device", "id")
LABEL_COLUMNS = ("label", "anomaly", "is_anomaly")
LABEL_LIKE = ("label", "anomal", "changepoint", "target", "class", "outlier", "fault")
MISSING = frozenset({"", "nan", "null", "na", "n/a", "none"})
KEEP_SHARE = 0.9  # of non-empty cells that are numbers (a signal) or times (the first column)
EPOCH_MIN = 1e8  # epoch seconds below (1973-03-03) are a count or a measurement, not a time
PROBE = 200  # data rows read to tell whether an unnamed first column holds times
SHOWN = 5  # line numbers quoted per warning


class CsvError(ValueError):
    """The file cannot be used; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class CsvLayout:
    """Which column is what, found from the header and the flags."""

    delimiter: str
    time: str
    """The time column ("" when `numbered` and no column is named like a time)."""
    source: str | None
    label: str | None
    signals: tuple[str, ...]
    culprit: str | None = None
    numbered: bool = False
    """Rows are timed by position: data row i (from 0) is i seconds after 1970-01-01."""


@dataclass(frozen=True, slots=True)
class CsvRow:
    ts: float
    ts_text: str
    source: str
    signals: dict[str, float | None]
    label: float | None
    line: int
    culprit: str = ""


def _pick(
    header: list[str], wanted: str | None, defaults: tuple[str, ...], what: str
) -> str | None:
    if wanted is not None:
        if wanted not in header:
            raise CsvError(f"{what} column {wanted!r} not in the header ({', '.join(header[:12])})")
        return wanted
    lowered = {h.lower(): h for h in header}
    return next((lowered[d] for d in defaults if d in lowered), None)


def layout(
    path: Path,
    time_col: str | None = None,
    source_col: str | None = None,
    label_col: str | None = None,
    ignore: tuple[str, ...] = (),
    sep: str | None = None,
    culprit_col: str | None = None,
    row_numbers: bool = False,
) -> CsvLayout:
    """Find the columns: by flags, else by common names; the time column defaults to the first
    (`read_table` checks that it holds times). With `row_numbers` no column is the time and a
    column named like one is left out. The culprit column (no default name) is never a signal."""
    if row_numbers and time_col is not None:
        raise CsvError("give a time column (--time-col) or --row-numbers, not both")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            first = handle.readline()
    except FileNotFoundError:
        raise CsvError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise CsvError(f"{path} is a directory, not a CSV file") from None
    except UnicodeDecodeError:
        raise CsvError(f"{path} is not a UTF-8 text file") from None
    if not first.strip():
        raise CsvError(f"{path} is empty")
    delimiter = sep or (";" if first.count(";") > first.count(",") else ",")
    header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter))]
    named_time = _pick(header, time_col, TIME_COLUMNS, "time")
    time = (named_time or "") if row_numbers else (named_time or header[0])
    source = _pick(header, source_col, SOURCE_COLUMNS, "source")
    label = _pick(header, label_col, LABEL_COLUMNS, "label")
    culprit = _pick(header, culprit_col, (), "culprit")
    for name in ignore:
        if name not in header:
            raise CsvError(f"column to ignore {name!r} not in the header")
    skip = {time, source, label, culprit, *ignore}
    signals = tuple(h for h in header if h not in skip and h)
    if not signals:
        raise CsvError(f"{path}: no signal columns besides {time or 'the ignored ones'!r}")
    return CsvLayout(delimiter, time, source, label, signals, culprit, row_numbers)


def rows(path: Path, spec: CsvLayout, default_source: str) -> Iterator[CsvRow]:
    """Rows in file order; empty cells are missing values; bad cells stop with the line number."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, delimiter=spec.delimiter, skipinitialspace=True)
        for line, row in enumerate(reader, start=2):
            ts, ts_text = _row_time(
                float(line - 2) if spec.numbered else _time_value(row.get(spec.time)), path, line
            )
            values: dict[str, float | None] = {}
            for name in spec.signals:
                values[name] = _number(row.get(name), path, line, name)
            source = (row.get(spec.source) or default_source) if spec.source else default_source
            label = _number(row.get(spec.label), path, line, spec.label) if spec.label else None
            culprit = (row.get(spec.culprit) or "").strip() if spec.culprit else ""
            yield CsvRow(ts, ts_text, source, values, label, line, culprit)


def _row_time(value: str | float | None, path: Path, line: int) -> tuple[float, str]:
    try:
        return parse_ts(value)
    except Invalid as exc:
        raise CsvError(f"{path}:{line}: {exc.detail}") from None


def _time_value(text: str | None) -> str | float | None:
    text = (text or "").strip()
    try:
        return float(text) if text else None
    except ValueError:
        return text


def _number(text: str | None, path: Path, line: int, column: str) -> float | None:
    if text is None or text.strip().lower() in MISSING:
        return None
    try:
        return float(text)
    except ValueError:
        raise CsvError(
            f"{path}:{line}: column {column!r}: {text.strip()[:30]!r} is not a number"
        ) from None


@dataclass(frozen=True, slots=True)
class Table:
    """A whole CSV as arrays, for training, evaluation and offline detection."""

    path: Path
    times: np.ndarray
    """(n,) epoch seconds."""
    ts_text: list[str]
    sources: list[str]
    signals: tuple[str, ...]
    values: np.ndarray
    """(n, k) float64, NaN = missing."""
    labels: np.ndarray | None
    """(n,) 0/1 when a label column or file was given."""
    culprits: tuple[str, ...] | None = None
    """(n,) the culprit column's signal names ("" where empty), when one was given."""
    warnings: tuple[str, ...] = ()
    """One line per oddity the reader worked around, for the commands to print."""

    def __len__(self) -> int:
        return len(self.times)

    def records(self) -> list[Record]:
        """The rows as the records a producer would send (one source per row)."""
        out = []
        for i, row in enumerate(self.values.tolist()):
            signals = {
                name: (None if math.isnan(v) else v)
                for name, v in zip(self.signals, row, strict=True)
            }
            out.append(Record(self.sources[i], float(self.times[i]), self.ts_text[i], signals))
        return out


def read_table(
    path: Path,
    signals: tuple[str, ...] = (),
    time_col: str | None = None,
    label_col: str | None = None,
    ignore: tuple[str, ...] = (),
    source_col: str | None = None,
    labels_file: Path | None = None,
    sep: str | None = None,
    culprit_col: str | None = None,
    row_numbers: bool = False,
    default_source: str | None = None,
) -> Table:
    """Read a CSV into a `Table`: every numeric column is a signal unless `signals` names them.

    Labels come from `label_col` (default: label/anomaly/is_anomaly if present) or from a file
    holding one label per data row (a one-column CSV with a header, or the label column of a CSV).
    `culprit_col` names a text column with, on anomalous rows, the signal that broke.
    `default_source` (default: the file's stem) is the source of rows without a source column."""
    spec = layout(path, time_col, source_col, label_col, ignore, sep, culprit_col, row_numbers)
    if signals:
        unknown = [s for s in signals if s not in spec.signals]
        if unknown:
            raise CsvError(f"signal column(s) {', '.join(unknown)} not in {path}")
        spec = replace(spec, signals=tuple(signals))
    if time_col is None and not spec.numbered and spec.time.lower() not in TIME_COLUMNS:
        _require_times(path, spec)
    table, columns = _read(path, spec, default_source or path.stem)
    notes = list(table.warnings)
    chosen = _choose(path, columns, bool(signals), notes)
    if not chosen:
        raise CsvError(f"{path}: no numeric column to use as a signal")
    values = table.values[:, [spec.signals.index(name) for name in chosen]]
    if not signals:
        notes += _label_like(chosen, values, label_col is not None or labels_file is not None)
    labels = table.labels if labels_file is None else _labels_from(labels_file, len(table))
    if labels is not None:
        labels = (np.where(np.isnan(labels), 0.0, labels) > 0.5).astype(np.int8)
    return replace(table, signals=chosen, values=values, labels=labels, warnings=tuple(notes))


def _require_times(path: Path, spec: CsvLayout) -> None:
    """Refuse a default first column unless `KEEP_SHARE` of its first cells are RFC 3339 times or
    epoch seconds (1973..2100) running forward: a signal read as times would be lost as one."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, delimiter=spec.delimiter, skipinitialspace=True)
        cells = [c for row in islice(reader, PROBE) if (c := (row.get(spec.time) or "").strip())]
    numbers, timely = [], 0
    for cell in cells:
        value = _time_value(cell)
        try:
            parse_ts(value)
        except Invalid:
            continue
        if isinstance(value, float) and value < EPOCH_MIN:
            continue
        numbers += [value] if isinstance(value, float) else []
        timely += 1
    steps = np.diff(numbers)
    forward = steps.size == 0 or float(np.mean(steps >= 0)) >= KEEP_SHARE
    if cells and timely >= KEEP_SHARE * len(cells) and forward:
        return
    seen = f"e.g. {cells[0][:30]!r}" if cells else "it is empty"
    raise CsvError(
        f"{path}: no time column: the first column {spec.time!r} holds no times ({seen}) and "
        f"none is named {'/'.join(TIME_COLUMNS)}; name it with --time-col, or pass "
        "--row-numbers to time the rows by their position"
    )


@dataclass(slots=True)
class _Column:
    """One candidate signal column as read (NaN = missing or not a number)."""

    values: array[float] = field(default_factory=lambda: array("d"))
    numbers: int = 0
    texts: int = 0
    lines: list[int] = field(default_factory=list)  # the first `SHOWN` lines of text cells

    def add(self, cell: str, line: int) -> None:
        missing = cell.lower() in MISSING
        try:
            self.values.append(math.nan if missing else float(cell))
            self.numbers += not missing
        except ValueError:
            self.values.append(math.nan)
            self.texts += 1
            self.lines += [line] if len(self.lines) < SHOWN else []


def _read(path: Path, spec: CsvLayout, default_source: str) -> tuple[Table, dict[str, _Column]]:
    """One pass: every candidate column as a signal (ragged rows in the warnings), and what
    each column held."""
    columns = {name: _Column() for name in spec.signals}
    times, labels, few, many = array("d"), array("d"), array("q"), array("q")
    texts: list[str] = []
    sources: list[str] = []
    culprits: list[str] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=spec.delimiter, skipinitialspace=True)
        header = [name.strip() for name in next(reader)]
        at, width = {name: i for i, name in enumerate(header)}, len(header)
        wanted = [(at[name], columns[name]) for name in spec.signals]
        for row in reader:
            if not row:
                continue
            line = reader.line_num
            if len(row) < width:
                few.append(line)
            elif len(row) > width and any(c.strip() for c in row[width:]):
                many.append(line)
            cells = row + [""] * (width - len(row))
            moment = float(len(times)) if spec.numbered else _time_value(cells[at[spec.time]])
            ts, text = _row_time(moment, path, line)
            times.append(ts)
            texts.append(text)
            source = cells[at[spec.source]].strip() if spec.source else ""
            sources.append(source or default_source)
            if spec.label:
                label = _number(cells[at[spec.label]], path, line, spec.label)
                labels.append(math.nan if label is None else label)
            if spec.culprit:
                culprits.append(cells[at[spec.culprit]].strip())
            for i, column in wanted:
                column.add(cells[i].strip(), line)
    if not times:
        raise CsvError(f"{path}: no data rows")
    notes = [
        f"{len(found)} row{' has' if len(found) == 1 else 's have'} {what} than the header's "
        f"{width} cells ({_lines(found[:SHOWN], len(found))}): {then}"
        for found, what, then in (
            (few, "fewer", "their last columns read as missing values"),
            (many, "more", "the extra cells are not read"),
        )
        if found
    ]
    values = np.column_stack([np.asarray(c.values, dtype=np.float64) for c in columns.values()])
    marks = np.asarray(labels) if spec.label else None
    blamed = tuple(culprits) if spec.culprit else None
    table = Table(path, np.asarray(times), texts, sources, spec.signals, values, marks, blamed)
    return replace(table, warnings=tuple(notes)), columns


def _lines(shown: Sequence[int], count: int) -> str:
    listed = ", ".join(map(str, shown))
    return f"line{'s' if count > 1 else ''} {listed}{', ...' if count > len(shown) else ''}"


def _choose(
    path: Path, columns: dict[str, _Column], named: bool, notes: list[str]
) -> tuple[str, ...]:
    """The signal columns: numbers in at least `KEEP_SHARE` of their non-empty cells (a text
    column, such as a status or a site name, is no signal); `named`: the user's list."""
    chosen = []
    for name, column in columns.items():
        seen = column.numbers + column.texts
        if seen == 0:  # kept: a signal missing from this file is still one (null in a replay)
            chosen.append(name)
            notes.append(f"column {name!r} is empty: every value is read as missing")
        elif column.texts == 0:
            chosen.append(name)
        elif column.numbers or named:
            where = (
                f"column {name!r}: {column.texts} of {seen} cells are not numbers "
                f"({_lines(column.lines, column.texts)})"
            )
            if column.numbers >= KEEP_SHARE * seen:
                chosen.append(name)
                notes.append(f"{where}: read as missing values")
            elif named:
                raise CsvError(f"{path}: {where}")
            else:
                notes.append(f"{where}: not read as a signal (--ignore {name} silences this)")
    return tuple(chosen)


def _label_like(names: tuple[str, ...], values: np.ndarray, label_given: bool) -> list[str]:
    """Signals that look like a label: named like one with only 0/1 values, or (when no label
    was given) holding exactly 0 and 1."""
    notes = []
    for j, name in enumerate(names):
        distinct = set(np.unique(values[~np.isnan(values[:, j]), j]).tolist())
        if not distinct or not distinct <= {0.0, 1.0}:
            continue
        if any(part in name.lower() for part in LABEL_LIKE) or (
            not label_given and len(distinct) == 2
        ):
            held = " and ".join(str(int(v)) for v in sorted(distinct))
            notes.append(
                f"column {name!r} holds only {held} and is read as a signal: if it is a label, "
                f"pass --label-col {name}, else --ignore {name} (or list the signals: --signals)"
            )
    return notes


def _labels_from(path: Path, n: int) -> np.ndarray:
    spec = layout(path)
    column = spec.label or (spec.signals[-1] if spec.signals else spec.time)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, delimiter=spec.delimiter, skipinitialspace=True)
        found = [row.get(column) for row in reader]
    if len(found) != n:
        raise CsvError(f"{path}: {len(found)} labels for {n} data rows")
    return np.asarray([_number(v, path, i + 2, column) or 0.0 for i, v in enumerate(found)])
