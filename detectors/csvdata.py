"""Reading the CSV files users bring: one time column, one column per signal, optional source,
label and culprit (the signal that broke, on anomalous rows) columns. Shared by `replay`,
`train`, `evaluate`, `detect` and `warmup`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from detectors.records import Invalid, Record
from detectors.timestamps import parse_ts

TIME_COLUMNS = ("timestamp", "ts", "time", "datetime", "date")
SOURCE_COLUMNS = ("source", "source_id", "device", "id")
LABEL_COLUMNS = ("label", "anomaly", "is_anomaly")


class CsvError(ValueError):
    """The file cannot be used; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class CsvLayout:
    """Which column is what, found from the header and the flags."""

    delimiter: str
    time: str
    source: str | None
    label: str | None
    signals: tuple[str, ...]
    culprit: str | None = None


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
) -> CsvLayout:
    """Find the columns: by flags, else by common names; the time column defaults to the first.
    The culprit column (no default name) is text, never a signal."""
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
    time = _pick(header, time_col, TIME_COLUMNS, "time") or header[0]
    source = _pick(header, source_col, SOURCE_COLUMNS, "source")
    label = _pick(header, label_col, LABEL_COLUMNS, "label")
    culprit = _pick(header, culprit_col, (), "culprit")
    for name in ignore:
        if name not in header:
            raise CsvError(f"column to ignore {name!r} not in the header")
    skip = {time, source, label, culprit, *ignore}
    signals = tuple(h for h in header if h not in skip and h)
    if not signals:
        raise CsvError(f"{path}: no signal columns besides {time!r}")
    return CsvLayout(delimiter, time, source, label, signals, culprit)


def rows(path: Path, spec: CsvLayout, default_source: str) -> Iterator[CsvRow]:
    """Rows in file order; empty cells are missing values; bad cells stop with the line number."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, delimiter=spec.delimiter, skipinitialspace=True)
        for line, row in enumerate(reader, start=2):
            try:
                ts, ts_text = parse_ts(_time_value(row.get(spec.time)))
            except Invalid as exc:
                raise CsvError(f"{path}:{line}: {exc.detail}") from None
            values: dict[str, float | None] = {}
            for name in spec.signals:
                values[name] = _number(row.get(name), path, line, name)
            source = (row.get(spec.source) or default_source) if spec.source else default_source
            label = _number(row.get(spec.label), path, line, spec.label) if spec.label else None
            culprit = (row.get(spec.culprit) or "").strip() if spec.culprit else ""
            yield CsvRow(ts, ts_text, source, values, label, line, culprit)


def _time_value(text: str | None) -> str | float | None:
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return text


def _number(text: str | None, path: Path, line: int, column: str) -> float | None:
    if text is None or not text.strip() or text.strip().lower() in {"nan", "null", "na"}:
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
) -> Table:
    """Read a CSV into a `Table`: every numeric column is a signal unless `signals` names them.

    Labels come from `label_col` (default: label/anomaly/is_anomaly if present) or from a file
    holding one label per data row (a one-column CSV with a header, or the label column of a CSV).
    `culprit_col` names a text column with, on anomalous rows, the signal that broke.
    """
    spec = layout(
        path,
        time_col=time_col,
        source_col=source_col,
        label_col=label_col,
        ignore=ignore,
        sep=sep,
        culprit_col=culprit_col,
    )
    if signals:
        unknown = [s for s in signals if s not in spec.signals]
        if unknown:
            raise CsvError(f"signal column(s) {', '.join(unknown)} not in {path}")
        spec = replace(spec, signals=tuple(signals))
    else:
        numeric = _numeric_columns(path, spec)
        if not numeric:
            raise CsvError(f"{path}: no numeric column to use as a signal")
        spec = replace(spec, signals=numeric)
    times: list[float] = []
    texts: list[str] = []
    sources: list[str] = []
    values: list[list[float]] = []
    labels: list[float] = []
    culprits: list[str] = []
    for row in rows(path, spec, path.stem):
        times.append(row.ts)
        texts.append(row.ts_text)
        sources.append(row.source)
        values.append([math.nan if v is None else v for v in row.signals.values()])
        labels.append(math.nan if row.label is None else row.label)
        culprits.append(row.culprit)
    if not times:
        raise CsvError(f"{path}: no data rows")
    label_array = np.asarray(labels) if spec.label else None
    if labels_file is not None:
        label_array = _labels_from(labels_file, len(times))
    if label_array is not None:
        label_array = np.where(np.isnan(label_array), 0.0, label_array) > 0.5
    return Table(
        path,
        np.asarray(times),
        texts,
        sources,
        spec.signals,
        np.asarray(values, dtype=np.float64).reshape(len(times), -1),
        None if label_array is None else label_array.astype(np.int8),
        tuple(culprits) if spec.culprit else None,
    )


def _numeric_columns(path: Path, spec: CsvLayout, probe: int = 200) -> tuple[str, ...]:
    """Signal columns whose first `probe` non-empty cells are all numbers (text columns such as
    a status or a site name are not signals)."""
    numeric = dict.fromkeys(spec.signals, False)
    text: set[str] = set()
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, delimiter=spec.delimiter, skipinitialspace=True)
        for i, row in enumerate(reader):
            if i >= probe:
                break
            for name in spec.signals:
                cell = (row.get(name) or "").strip()
                if not cell or cell.lower() in {"nan", "null", "na"}:
                    continue
                try:
                    float(cell)
                    numeric[name] = True
                except ValueError:
                    text.add(name)
    return tuple(n for n, ok in numeric.items() if ok and n not in text)


def _labels_from(path: Path, n: int) -> np.ndarray:
    spec = layout(path)
    column = spec.label or (spec.signals[-1] if spec.signals else spec.time)
    found = [row.get(column) for row in _dict_rows(path, spec.delimiter)]
    if len(found) != n:
        raise CsvError(f"{path}: {len(found)} labels for {n} data rows")
    return np.asarray([_number(v, path, i + 2, column) or 0.0 for i, v in enumerate(found)])


def _dict_rows(path: Path, delimiter: str) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter, skipinitialspace=True))
