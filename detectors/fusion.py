"""Fusion of tail probabilities: many tests, one false-alarm budget.

Each detector on each signal gives p = P(a normal value is at least this extreme). Taking the
smallest of k p-values would raise k times the false alarms, so the minimum is corrected with
Šidák's formula, 1 - (1 - p_min)^k, first over a signal's detectors and then over a record's
signals. The record score is 1 - p, so `score >= 1 - target_fap` alarms on about `target_fap` of
normal records whatever the number of signals.
"""

from __future__ import annotations

import numpy as np


def sidak(p_min: np.ndarray, k: np.ndarray | float) -> np.ndarray:
    """1 - (1 - p_min)^k, accurate for tiny p (log1p/expm1); k = 0 gives 1 (nothing tested)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # k = 0, p = 1: 0 * -inf
        out = -np.expm1(np.asarray(k) * np.log1p(-np.minimum(p_min, 1.0)))
    return np.where(np.asarray(k) > 0, np.minimum(np.maximum(out, 0.0), 1.0), 1.0)


def per_test_level(target_fap: float, k: np.ndarray | float) -> np.ndarray:
    """The p each of k tests must reach for their Šidák-corrected minimum to reach `target_fap`."""
    kk = np.maximum(np.asarray(k, dtype=np.float64), 1.0)
    return np.asarray(-np.expm1(np.log1p(-target_fap) / kk))


def severity(p: float, target_fap: float) -> str:
    """How far below the false-alarm budget the record's p lies, in decades."""
    ratio = target_fap / max(p, 1e-300)
    if ratio < 10:
        return "low"
    if ratio < 100:
        return "medium"
    if ratio < 1000:
        return "high"
    return "critical"
