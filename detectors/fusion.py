"""Fusion of tail probabilities: many tests, one false-alarm budget.

Each detector on each signal gives p = P(a normal value is at least this extreme). Taking the
smallest of k p-values would raise k times the false alarms, so the minimum is corrected with
Šidák's formula, 1 - (1 - p_min)^k, first over a signal's detectors and then over a record's
signals. The record score is 1 - p, so `score >= 1 - target_fap` alarms on about `target_fap` of
normal records whatever the number of signals.

A rarity detector (`detectors.novelty`) is not one more test: it says whether the value is new
(a value where the signal has never been), and for a new value the signal's p is multiplied by
q = P(new | p of that decade), learnt per signal, so the product estimates P(p this small and
new). For a known value the p stands.
"""

from __future__ import annotations

import numpy as np

from detectors.jit import kernel

DECADES = 8
"""Decades of p a rarity detector keeps apart: (0.1, 1], (0.01, 0.1], ..., 1e-7 and below."""


@kernel
def decade(p: float) -> int:
    """0 for p in (0.1, 1], 1 for (0.01, 0.1], ..., DECADES - 1 beyond (NaN: 0)."""
    if not p < 0.1:
        return 0
    d = -np.log10(max(p, 1e-300))
    return int(min(np.ceil(d) - 1.0, DECADES - 1.0))


def sidak(p_min: np.ndarray, k: np.ndarray | float) -> np.ndarray:
    """1 - (1 - p_min)^k, accurate for tiny p (log1p/expm1); k = 0 gives 1 (nothing tested)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # k = 0, p = 1: 0 * -inf
        out = -np.expm1(np.asarray(k) * np.log1p(-np.minimum(p_min, 1.0)))
    return np.where(np.asarray(k) > 0, np.minimum(np.maximum(out, 0.0), 1.0), 1.0)


@kernel
def _sidak(p_min: float, k: float) -> float:
    """`sidak` of one number (the same operations)."""
    if k <= 0:
        return 1.0
    out = -np.expm1(k * np.log1p(-np.minimum(p_min, 1.0)))
    return float(np.minimum(np.maximum(out, 0.0), 1.0))


@kernel
def fuse_step(
    stats: np.ndarray,
    p_det: np.ndarray,
    learnt: np.ndarray,
    warmup: float,
    late_start: np.ndarray,
    explains: np.ndarray,
    rarity: int,
    weights: np.ndarray,
    known_factor: float,
    present: np.ndarray,
    starts: np.ndarray,
    verdict: np.ndarray,
    p_pre: np.ndarray,
    p_sig: np.ndarray,
    p_rec: np.ndarray,
    p_alert: np.ndarray,
    warming: np.ndarray,
) -> None:
    """One time step's fusion: detectors' p (rows) -> signals' p -> records' p, in place.

    `learnt` is how many values each detector's calibration has learnt: a young one holds the
    record in warm-up, or, for a late starter (`late_start`), gives no verdict until it is
    warm. Each row (d, k) of `explains` sets detector k's p to 1 where d has a verdict. Row
    `rarity` (-1: none) is not a test: where its statistic says new, the signal's p from the
    others is multiplied by `weights[i, decade of that p]`; its own p is set to 1 (it never
    fires alone). `p_pre` gets each signal's p before that weighing. `p_alert` is the record's
    p as alerts see it: a signal whose value it finds known counts `known_factor` times its p.
    Series `starts[g]` up to the next start are record g's signals.
    """
    n_det, n_series = p_det.shape
    young_any = np.zeros(n_series, dtype=np.bool_)
    tests = float(n_det - (1 if rarity >= 0 else 0))
    for d in range(n_det):
        if d == rarity:
            for i in range(n_series):
                p_det[d, i] = 1.0
                verdict[d, i] = False
            continue
        for i in range(n_series):
            young = learnt[d, i] < warmup
            held = young and late_start[d]
            if held:
                p_det[d, i] = 1.0
            verdict[d, i] = np.isfinite(stats[d, i]) and not held
            if young and not late_start[d]:
                young_any[i] = True
    for e in range(explains.shape[0]):  # a rhythm explains what level detectors see
        d, k = explains[e, 0], explains[e, 1]
        for i in range(n_series):
            if verdict[d, i]:
                p_det[k, i] = 1.0
    for i in range(n_series):
        if present[i]:
            low = 1.0
            for d in range(n_det):
                if d != rarity:
                    low = np.minimum(low, p_det[d, i])
            p = _sidak(low, tests)
            p_pre[i] = p
            if rarity >= 0 and stats[rarity, i] > 0:  # new: p and new, per this signal's odds
                p = p * weights[i, decade(p)]
            p_sig[i] = p
        else:
            p_pre[i] = 1.0
            p_sig[i] = 1.0
    for g in range(len(starts)):
        end = starts[g + 1] if g + 1 < len(starts) else n_series
        low, tested, warm = p_sig[starts[g]], 0.0, False
        alert = 1.0
        for i in range(starts[g], end):
            low = np.minimum(low, p_sig[i])
            known = rarity >= 0 and stats[rarity, i] == 0.0
            alert = np.minimum(alert, p_sig[i] * known_factor if known else p_sig[i])
            if present[i]:
                tested += 1.0
                warm = warm or young_any[i]
        p_rec[g] = _sidak(low, tested)
        p_alert[g] = np.minimum(_sidak(alert, tested), 1.0)
        warming[g] = warm


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
