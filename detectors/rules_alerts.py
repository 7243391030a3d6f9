"""Validation rules on the scoring path: each record's `check_failures`, and rule events.

A batch part's records are judged by the rule book at once, on the columns the scorer has
already laid out (`batch_columns`: the layout's value matrix, no Python per record). Then, per
source in record order, a rule that fails on a record but did not on the source's previous one
starts a failing run: that record raises the rule event (`Scored.rule_alert`), the run's later
records only list the rule. A record that cannot judge a rule (unknown) neither ends nor starts
its run. The runs are found with array operations (`runs`); Python only touches the records
that fail or cannot judge a rule. The rules failing at a source's last record live in its state
(`SourceState.failing`), so runs span batches and restarts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from detectors.batch import Layout, SourceBatch
from detectors.records import Record
from detectors.results import Scored
from detectors.rules import SEVERITIES, RuleBook, Verdicts, columns

RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


class Runs(NamedTuple):
    """Where failing runs start, as (rule, record) pairs, and (rules x sources) the rules
    failing at each source's last record."""

    starts: tuple[np.ndarray, np.ndarray]
    failing: np.ndarray


def batch_columns(
    layout: Layout, groups: Sequence[SourceBatch], names: Iterable[str]
) -> tuple[dict[str, np.ndarray], np.ndarray, list[str], list[int]]:
    """The rules' inputs read off the layout: name -> (n,) column, (n,) times, and the sources
    with their record counts. Rows are the groups' records, group by group, in order."""
    counts = [len(g.rows) for g in groups]
    n = sum(counts)
    reps = np.asarray(counts, dtype=np.intp)
    starts = np.repeat(np.cumsum(reps) - reps, reps)
    step = np.arange(n, dtype=np.intp) - starts
    source = np.repeat(np.arange(len(groups), dtype=np.intp), reps)
    ts = layout.times[step, source]
    names = list(names)
    if not names:
        return {}, ts, [g.source for g in groups], counts
    series = np.array(
        [
            [base + i if (i := g.state.index.get(name)) is not None else -1 for name in names]
            for g, base in zip(groups, layout.offsets.tolist(), strict=False)
        ],
        dtype=np.intp,
    ).reshape(len(groups), len(names))
    absent = series < 0  # the source has no such signal
    if absent.any():
        at = series[source].T
        values = layout.values[step[None, :], np.maximum(at, 0)]
        values[at < 0] = np.nan
    else:
        values = layout.values[step[None, :], series[source].T]
    return dict(zip(names, values, strict=True)), ts, [g.source for g in groups], counts


def runs(verdicts: Verdicts, counts: Sequence[int], before: np.ndarray) -> Runs:
    """Failing runs of each rule per source: `before` (rules x sources) is what failed at each
    source's previous record. A record is in a run if it fails the rule, or cannot judge it
    and the run was on; a run starts at a failing record whose previous judged one (or the
    source's state, if none in this batch) did not fail."""
    failed = verdicts.failed
    n = failed.shape[1]
    reps = np.asarray(counts, dtype=np.intp)
    first = np.cumsum(reps) - reps
    where = np.where(verdicts.unknown, -1, np.arange(n, dtype=np.intp))
    last = np.maximum.accumulate(where, axis=1)  # per rule, the last record that judged it
    ends = last[:, first + reps - 1]
    at_end = np.take_along_axis(failed, np.maximum(ends, 0), axis=1)
    failing = np.where(ends < first, before, at_end)
    rule, col = np.nonzero(failed)
    prior = np.where(col > 0, last[rule, np.maximum(col - 1, 0)], -1)
    source = np.searchsorted(first, col, side="right") - 1
    was = np.where(prior < first[source], before[rule, source], failed[rule, np.maximum(prior, 0)])
    return Runs((rule[~was], col[~was]), failing)


def judge(
    book: RuleBook,
    groups: Sequence[SourceBatch],
    records: Sequence[Record],
    results: Sequence[Scored | None],
    layout: Layout | None = None,
) -> None:
    """Fill the results of `groups`' records with the rules' verdicts; update the sources'
    failing rules. With the part's `layout`, the columns come from it (the hot path);
    without, from the records."""
    rows = [i for g in groups for i in g.rows]
    if not rows:
        return
    if layout is not None:
        signals, ts, sources, counts = batch_columns(layout, groups, book.signals)
        verdicts = book.evaluate(signals, ts, sources, counts)
    else:
        taken = [records[i] for i in rows]
        counts = [len(g.rows) for g in groups]
        ts = np.fromiter((r.ts for r in taken), dtype=np.float64, count=len(taken))
        verdicts = book.evaluate(
            columns(taken, book.signals), ts, [g.source for g in groups], counts
        )
    index = {name: r for r, name in enumerate(book.names)}
    before = np.zeros((len(book), len(groups)), dtype=bool)
    for j, g in enumerate(groups):
        for name in g.state.failing:
            r = index.get(name)
            if r is not None:  # a rule the book no longer has ends with the next record
                before[r, j] = True
    failed, unknown = verdicts.failed, verdicts.unknown
    if not failed.any() and not before.any():
        for g in groups:
            g.state.failing = []
        starts = None
    else:
        found = runs(verdicts, counts, before)
        starts = found.starts
        on: list[bool] = np.asarray(found.failing.any(axis=0)).tolist()
        for j, g in enumerate(groups):
            g.state.failing = (
                [book.names[r] for r in np.flatnonzero(found.failing[:, j]).tolist()]
                if on[j]
                else []
            )
    names = book.names
    fails, unsure = _by_record(failed, names), _by_record(unknown, names)
    if not fails and not unsure:
        return
    alerts: dict[int, list[str]] = {}
    if starts is not None:
        for r, c in zip(*(a.tolist() for a in starts), strict=True):
            alerts.setdefault(c, []).append(names[r])
    severity = {r.name: r.severity for r in book.rules}
    for col, listed in unsure.items():
        res = results[rows[col]]
        if res is not None:
            res.check_unknown = listed
    for col, listed in fails.items():
        res = results[rows[col]]
        if res is None:
            continue
        res.check_failures = listed
        new = alerts.get(col)
        if new:
            res.rule_alert = new
            res.rule_severity = max((severity[n] for n in new), key=RANK.__getitem__)


def _by_record(mask: np.ndarray, names: Sequence[str]) -> dict[int, list[str]]:
    """(rules x records) mask -> record -> its rules' names, in the book's order; only the
    records with some."""
    out: dict[int, list[str]] = {}
    if mask.any():
        cols, rows = np.nonzero(mask.T)
        for c, r in zip(cols.tolist(), rows.tolist(), strict=True):
            named = out.get(c)
            if named is None:
                out[c] = [names[r]]
            else:
                named.append(names[r])
    return out
