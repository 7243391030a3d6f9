"""The evaluate report for the terminal: the verdicts, the pages, and each rule, a line each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.evaluate_rules import rule_lines


def summary_lines(report: dict[str, Any], label: str, data: str, where: Path) -> list[str]:
    """What `anomstream evaluate` prints of `report` (metrics.json, written to `where`)."""
    fused, alone = report["fused"], report["autoencoder"]
    head = (
        f"{label} on {data}: F1 {fused['f1']:.3f}  FAR {100 * fused['far']:.2f} %  "
        f"MAR {100 * fused['mar']:.2f} %  (autoencoder alone: F1 {alone['f1']:.3f}, "
        f"FAR {100 * alone['far']:.2f} %)  -> {where}/metrics.json"
    )
    return [head, event_line(report["events"]), *rule_lines(report.get("rules", []))]


def event_line(figures: dict[str, Any]) -> str:
    """`metrics.event_report` in one line: pages are what an operator sees."""

    def num(value: float | None, unit: str) -> str:
        return "-" if value is None else f"{value:.1f}{unit}"

    line = (
        f"{figures['events']} events ({figures['false_events']} false, "
        f"{num(figures['false_per_10k_normal'], '')} per 10k normal rows); "
        f"runs caught {figures['runs_caught']}/{figures['runs']}, first event after "
        f"{num(figures['delay_rows_mean'], ' rows')} / {num(figures['delay_seconds_mean'], ' s')}"
        f" on average (median {num(figures['delay_rows_median'], ' rows')})"
    )
    if "culprit_share" in figures:
        line += f"; culprit right {figures['culprit_right']}/{figures['culprit_runs']}"
    return line
