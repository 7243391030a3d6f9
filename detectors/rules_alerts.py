"""Validation rules on the scoring path: each record's `check_failures`, and rule events.

A batch part's records are judged by the rule book at once (`RuleBook.evaluate_records`);
then, per source in record order, a rule that fails on a record but did not on the source's
previous one starts a failing run: that record raises the rule event (`Scored.rule_alert`), the
run's later records only list the rule. The rules failing at a source's last record live in
its state (`SourceState.failing`), so runs span batches and restarts. A record that cannot judge
a rule (unknown) neither ends nor starts its run.
"""

from __future__ import annotations

from collections.abc import Sequence

from detectors.batch import SourceBatch
from detectors.records import Record
from detectors.results import Scored
from detectors.rules import SEVERITIES, RuleBook

RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def judge(
    book: RuleBook,
    groups: Sequence[SourceBatch],
    records: Sequence[Record],
    results: Sequence[Scored | None],
) -> None:
    """Fill the results of `groups`' records with the rules' verdicts; update the sources'
    failing rules."""
    rows = [i for g in groups for i in g.rows]
    if not rows:
        return
    verdicts = book.evaluate_records([records[i] for i in rows])
    any_unknown = bool(verdicts.unknown.any())
    unknowns = verdicts.unknowns() if any_unknown else None
    if not verdicts.failed.any() and not any(g.state.failing for g in groups):
        if unknowns is not None:
            for i, unsure in zip(rows, unknowns, strict=True):
                res = results[i]
                if res is not None and unsure:
                    res.check_unknown = unsure
        return
    failures = verdicts.failures()
    severity = {r.name: r.severity for r in book.rules}
    k = 0
    for group in groups:
        previous = group.state.failing
        for i in group.rows:
            failed, unsure = failures[k], unknowns[k] if unknowns is not None else []
            k += 1
            res = results[i]
            if res is None:
                continue
            if unsure:
                res.check_unknown = unsure
            if failed:
                res.check_failures = failed
                new = [name for name in failed if name not in previous]
                if new:
                    res.rule_alert = new
                    res.rule_severity = max((severity[n] for n in new), key=RANK.__getitem__)
            if unsure and previous:  # not judged: a run in progress goes on
                failed = failed + [n for n in previous if n in unsure and n not in failed]
            previous = failed
        group.state.failing = previous
