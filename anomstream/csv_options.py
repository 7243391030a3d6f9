"""How the commands read a CSV file: the shared click options and the reader they configure.

Shared by `train`, `evaluate`, `detect` (anomstream.cli_models) and `warmup --from-csv`, so no
command module imports another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from detectors.csvdata import Table, read_table

F = TypeVar("F", bound=Callable[..., Any])


def names(text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


def csv_options(fun: F) -> F:
    """How to read the CSV: shared by train, evaluate and detect."""
    options = [
        click.option("--sep", type=click.Choice([",", ";"]), help="separator (default: auto)"),
        click.option("--ignore", help="comma-separated columns that are not signals"),
        click.option(
            "--labels",
            "labels_file",
            type=click.Path(path_type=Path),
            help="file with one 0/1 label per data row (instead of a label column)",
        ),
        click.option("--label-col", help="label column (default: label/anomaly/is_anomaly)"),
        click.option(
            "--culprit-col",
            help="text column naming, on anomalous rows, the signal that broke (never a signal; "
            "evaluate scores the events' first signal against it)",
        ),
        click.option("--time-col", help="timestamp column (default: timestamp/ts/time/datetime)"),
        click.option("--source-col", help="source column (default: source/device, if present)"),
        click.option("--signals", help="comma-separated signal columns (default: every numeric)"),
    ]
    for option in options:
        fun = option(fun)
    return fun


def load_csv(
    path: Path,
    signals: str | None = None,
    time_col: str | None = None,
    source_col: str | None = None,
    label_col: str | None = None,
    labels_file: Path | None = None,
    ignore: str | None = None,
    sep: str | None = None,
    culprit_col: str | None = None,
) -> Table:
    """The CSV as `csv_options` describe it (commands pass those options on as `**reading`)."""
    return read_table(
        path,
        signals=names(signals),
        time_col=time_col,
        source_col=source_col,
        label_col=label_col,
        ignore=names(ignore),
        labels_file=labels_file,
        sep=sep,
        culprit_col=culprit_col,
    )
