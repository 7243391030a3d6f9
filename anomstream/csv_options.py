"""How the commands read a CSV file: the shared click options, the reader they configure, and
the warnings it prints; plus the other options those commands share (`--target-fap`).

Shared by `train`, `evaluate`, `detect` (anomstream.cli_models), `warmup --from-csv` and
`replay`, so no command module imports another, and one option reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, overload

import click

from detectors.csvdata import Table, read_table

F = TypeVar("F", bound=Callable[..., Any])

TIME_COL_HELP = (
    "time column (default: the one named timestamp/ts/time/datetime/date, else the first "
    "column if it holds times)"
)
TARGET_FAP = click.FloatRange(1e-9, 0.5, max_open=True)
"""`--target-fap`'s range in every command: 1e-9 is the setting `sensitivity` 0, and the
worker's `target_fap` setting is below 0.5."""


def names(text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


def reading_options(labels: bool = True) -> Callable[[F], F]:
    """How to read the CSV; `labels`: also the label file and culprit options (commands that
    read labels; `replay` sends signals only)."""
    options = [
        click.option("--sep", type=click.Choice([",", ";"]), help="separator (default: auto)"),
        click.option("--ignore", help="comma-separated columns that are not signals"),
        click.option("--label-col", help="label column (default: label/anomaly/is_anomaly)"),
        click.option("--time-col", help=TIME_COL_HELP),
        click.option(
            "--row-numbers",
            is_flag=True,
            help="the file has no time column: data row N is at N seconds after "
            "1970-01-01T00:00:00Z (a column named like a time is left out)",
        ),
        click.option("--source-col", help="source column (default: source/device, if present)"),
        click.option("--signals", help="comma-separated signal columns (default: every numeric)"),
    ]
    if labels:
        options[3:3] = [
            click.option(
                "--labels",
                "labels_file",
                type=click.Path(path_type=Path),
                help="file with one 0/1 label per data row (instead of a label column)",
            ),
            click.option(
                "--culprit-col",
                help="text column naming, on anomalous rows, the signal that broke (never a "
                "signal; evaluate scores the events' first signal against it)",
            ),
        ]

    def decorate(fun: F) -> F:
        for option in options:
            fun = option(fun)
        return fun

    return decorate


@overload
def csv_options(fun: F) -> F: ...
@overload
def csv_options(*, labels: bool = True) -> Callable[[F], F]: ...
def csv_options(fun: F | None = None, *, labels: bool = True) -> F | Callable[[F], F]:
    """How to read the CSV: `@csv_options` (train, evaluate, detect, warmup), or
    `@csv_options(labels=False)` (replay)."""
    decorate = reading_options(labels)
    return decorate if fun is None else decorate(fun)


def warn(line: str) -> None:
    """A warning the user should read, one line on stderr."""
    click.echo(f"anomstream: warning: {line}", err=True)


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
    row_numbers: bool = False,
    default_source: str | None = None,
    warnings: Callable[[str], None] | None = warn,
) -> Table:
    """The CSV as `csv_options` describe it (commands pass those options on as `**reading`);
    what the reader worked around goes to `warnings` (default: stderr; None: nowhere)."""
    table = read_table(
        path,
        signals=names(signals),
        time_col=time_col,
        source_col=source_col,
        label_col=label_col,
        ignore=names(ignore),
        labels_file=labels_file,
        sep=sep,
        culprit_col=culprit_col,
        row_numbers=row_numbers,
        default_source=default_source,
    )
    for line in table.warnings:
        if warnings is not None:
            warnings(line)
    return table
