"""`anomstream evaluate --rules`: how each validation rule did on a labelled file.

Per rule, over the counted rows: the rows it serves (by their source), how many failed and how
many it could not judge (unknown), and against the labels how many failing rows were labelled
anomalous (its precision) and what share of the labelled anomalous rows it failed (what it
caught). A rule failing on many normal rows pages for nothing; one catching a share of the
anomalies the detectors miss earns its place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from detectors.results import Scored
from detectors.rules import RuleBook


def _share(part: int, whole: int) -> float | None:
    """None (JSON null) when there is nothing to divide, never a NaN."""
    return part / whole if whole else None


def rule_report(
    book: RuleBook, scored: Sequence[Scored], labels: np.ndarray
) -> list[dict[str, Any]]:
    """One entry per rule, in the book's order, then `"name": "(any)"` for the rules together;
    `scored` and `labels` are the counted rows."""
    anomalous = np.asarray(labels, dtype=bool)
    failed = np.zeros((len(book), len(scored)), dtype=bool)
    unknown = np.zeros_like(failed)
    serves = np.zeros_like(failed)
    row_of = {name: r for r, name in enumerate(book.names)}
    for c, res in enumerate(scored):
        serves[:, c] = book.serving(res.record.source)
        for name in res.check_failures:
            failed[row_of[name], c] = True
        for name in res.check_unknown:
            unknown[row_of[name], c] = True
    total = int(anomalous.sum())
    out = []
    for r, rule in enumerate(book.rules):
        entry = {"name": rule.name, "severity": rule.severity, "expr": rule.expr.text}
        out.append(entry | _figures(failed[r], unknown[r], serves[r], anomalous, total))
    no, unsure, where = (np.asarray(mask.any(axis=0)) for mask in (failed, unknown, serves))
    every = _figures(no, unsure, where, anomalous, total)
    out.append({"name": "(any)"} | every)
    return out


def _figures(
    failed: np.ndarray, unknown: np.ndarray, serves: np.ndarray, anomalous: np.ndarray, total: int
) -> dict[str, Any]:
    n_failed = int(failed.sum())
    hits = int((failed & anomalous).sum())
    return {
        "rows": int(serves.sum()),
        "failed": n_failed,
        "unknown": int(unknown.sum()),
        "failed_anomalous": hits,
        "precision": _share(hits, n_failed),
        "caught": _share(hits, total),
        "anomalies": total,
    }


def rule_lines(entries: Sequence[dict[str, Any]]) -> list[str]:
    """The report's rules for the terminal, one line each."""

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f} %"

    return [
        f"rule {e['name']}: failed {e['failed']} of {e['rows']} rows, unknown {e['unknown']}; "
        f"{e['failed_anomalous']} of the failing labelled anomalous (precision "
        f"{pct(e['precision'])}), caught {pct(e['caught'])} of {e['anomalies']} anomalous rows"
        for e in entries
    ]
