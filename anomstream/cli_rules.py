"""The `anomstream rules` commands (registered in `anomstream.cli`): check a rules file, and
see how often its rules fail on a CSV before the stream judges every record with them."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from anomstream.csv_options import csv_options, load_csv
from detectors.clock import LocalClock
from detectors.csvdata import CsvError
from detectors.rules import RuleBook, RuleError, Verdicts


@click.group()
def rules() -> None:
    """Validation rules: named conditions every record is checked against."""


@rules.command()
@click.argument("rules_file", type=click.Path(path_type=Path))
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="a CSV to judge: how often each rule fails or cannot judge (a signal missing)",
)
@click.option(
    "--timezone",
    envvar="ANOMSTREAM_TIMEZONE",
    default="UTC",
    show_default=True,
    help="IANA zone `hour` and `dow` are read in (env ANOMSTREAM_TIMEZONE, as the stream)",
)
@csv_options
def check(rules_file: Path, data: Path | None, timezone: str, **reading: Any) -> None:
    """Validate RULES_FILE (TOML `[[rules]]` tables, or JSON) and list its rules.

    \b
    Examples:
      anomstream rules check rules.toml
      anomstream rules check rules.toml --data history.csv   # how often each rule fails on it
    """
    try:
        clock = LocalClock(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.ClickException(
            f"unknown time zone {timezone!r} (IANA names, e.g. Europe/Berlin)"
        ) from None
    try:
        book = RuleBook.from_file(rules_file, clock)
        table = None if data is None else load_csv(data, **reading)
    except (RuleError, CsvError) as exc:
        raise click.ClickException(str(exc)) from None
    console = Console(highlight=False)
    valid = f"{len(book)} rule{'' if len(book) == 1 else 's'}, all valid"
    if table is None:
        console.print(_listing(book, None))
        console.print(valid if book.rules else "no rules")
        return
    columns = {name: table.values[:, j] for j, name in enumerate(table.signals)}
    verdicts = book.evaluate(columns, table.times, table.sources)
    console.print(_listing(book, verdicts))
    console.print(f"{valid}; judged on {len(table)} rows of {data}")
    for rule in book.rules:
        absent = sorted(rule.expr.signals - set(table.signals))
        if absent:
            console.print(
                f"note: {rule.name} reads {', '.join(absent)}, not in {data}: "
                "unknown wherever it needs them"
            )


def _listing(book: RuleBook, verdicts: Verdicts | None) -> Table:
    """Without data: what each rule is; with data, how it judged the rows it applies to."""
    table = Table()
    table.add_column("rule", no_wrap=True)
    if verdicts is None:
        table.add_column("severity", no_wrap=True)
        table.add_column("sources", max_width=24)
    else:
        for heading in ("rows", "failed", "unknown"):
            table.add_column(heading, justify="right", no_wrap=True)
    table.add_column("expression", overflow="fold", min_width=20)
    for row, rule in enumerate(book.rules):
        cells = [rule.name]
        if verdicts is None:
            cells += [rule.severity, ", ".join(rule.sources)]
        else:
            applies = int(np.count_nonzero(verdicts.applies[row]))
            cells.append(str(applies))
            for mask in (verdicts.failed[row], verdicts.unknown[row]):
                count = int(np.count_nonzero(mask))
                cells.append(f"{count} ({100.0 * count / max(applies, 1):.1f} %)")
        table.add_row(*cells, " ".join(rule.expr.text.split()))
    return table
