"""The operating-mode memory's constants and its small compiled helpers (`detectors.modes`)."""

from __future__ import annotations

import numpy as np

from detectors.jit import kernel

MAX_MODES = 8
MATCH = 4.0
"""Median distance (in the mode's scales) under which a record is in that mode."""
CONFIRM = 30
"""Records in a row, near each other and in no mode, that found a new one."""
KNOWN = 100
"""Records a mode needs before it counts as shown before (a switch to it does not page)."""
SETTLE = 60
"""Records after a switch during which the switch explains level evidence (lags settle)."""
EXPLAIN = 4.0
"""A value within this many of its mode's scales (or between the two modes of a switch) fits."""
RAMP = 20
"""Records between two modes (a ramp) that a switch explains; for as long after entering
the new mode, a value between the two modes fits (a signal that lags the others)."""
DROPOUT_RUN = 3
"""Exact zeros in a row that are a dropout (a flaky link), not a stop."""
FAR_FROM_ZERO = 10.0
"""A zero is a dropout only on a signal whose mode sits this many scales away from it."""
MEMORY = 500
"""Records a mode's centre and scale remember."""
ONSET_SIGNALS = 2
"""Signals that must move together towards another known mode for a record to be a switch's
first step (a spike moves one)."""
ONSET_MOVE = 2.0
"""How far (in the current mode's scales) each of them must have moved."""
QUIET = 20
"""Records after a switch between known modes (and a dropout) whose statistics the
calibrations do not learn: a switch's jump is not what a within-mode value is judged against."""

# meta fields
CURRENT, PREVIOUS, SINCE, CAND_N, ZERO_RUN, DROPOUTS, COLS = range(7)


@kernel
def _median_distance(x: np.ndarray, center: np.ndarray, scale: np.ndarray) -> float:
    d = np.empty(len(x))
    n = 0
    for j in range(len(x)):
        if not np.isnan(x[j]) and not np.isnan(center[j]):
            d[n] = abs(x[j] - center[j]) / scale[j]
            n += 1
    if n == 0:
        return np.inf
    return float(np.median(d[:n]))


@kernel
def _floor(scale: float, center: float) -> float:
    return max(scale, 1e-3 * abs(center), 1e-9)


@kernel
def _away(x: np.ndarray, centers: np.ndarray, scales: np.ndarray, m: int) -> int:
    """Signals of `x` more than 2 ONSET_MOVE of mode `m`'s scales from it: a switch is one
    that moved several (with one signal, a switch cannot be told from a level shift)."""
    n = 0
    for j in range(len(x)):
        c, sc = centers[m, j], scales[m, j]
        if not np.isnan(x[j]) and not np.isnan(c) and abs(x[j] - c) > 2 * ONSET_MOVE * sc:
            n += 1
    return n


@kernel
def _onset(
    x: np.ndarray, centers: np.ndarray, scales: np.ndarray, counts: np.ndarray, cur: int
) -> int:
    """The known mode that at least ONSET_SIGNALS signals of a record still in mode `cur`
    have moved towards (each ONSET_MOVE of cur's scales, between the two modes), or -1: the
    first record of a switch, which one broken signal alone cannot mimic."""
    n_modes, k = centers.shape
    best, best_n = -1, ONSET_SIGNALS - 1
    for m in range(n_modes):
        if m == cur or counts[m] < KNOWN:
            continue
        moved = 0
        for j in range(k):
            c, s, g = centers[cur, j], scales[cur, j], centers[m, j]
            if np.isnan(x[j]) or np.isnan(c) or np.isnan(g):
                continue
            gap, d = g - c, x[j] - c
            apart = abs(gap) > 2 * ONSET_MOVE * s and d * gap > 0
            if apart and ONSET_MOVE * s < abs(d) <= abs(gap) + EXPLAIN * scales[m, j]:
                moved += 1
        if moved > best_n:
            best, best_n = m, moved
    return best


@kernel
def _fits(
    raw: np.ndarray,
    evidence: np.ndarray,
    x: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    counts: np.ndarray,
    a: int,
    b: int,
) -> bool:
    """Every signal of the evidence (at least one) lies within the span of modes `a` and `b`
    (a < 0: of every known mode), in EXPLAIN of their scales; a dropped-out signal (NaN in
    `x`, a zero in `raw`) fits."""
    n_modes, k = centers.shape
    some = False
    for j in range(k):
        if not evidence[j]:
            continue
        some = True
        if np.isnan(x[j]):
            if raw[j] == 0.0:
                continue
            return False
        lo, hi = np.inf, -np.inf
        for m in range(n_modes):
            if a >= 0 and m not in (a, b):
                continue
            if a < 0 and counts[m] < KNOWN:
                continue
            c, sc = centers[m, j], scales[m, j]
            if np.isnan(c):
                return False
            lo = min(lo, c - EXPLAIN * sc)
            hi = max(hi, c + EXPLAIN * sc)
        if not lo <= x[j] <= hi:
            return False
    return some


@kernel
def _candidate(
    x: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    counts: np.ndarray,
    cand: np.ndarray,
    cand_scale: np.ndarray,
    meta: np.ndarray,
) -> None:
    """A record in no mode: it joins the candidate (or starts one); a candidate of CONFIRM
    records becomes a mode, in the least used slot when all are taken."""
    n_modes, k = centers.shape
    near = meta[CAND_N] > 0
    if near and meta[CAND_N] >= 5:
        near = _median_distance(x, cand, cand_scale) < MATCH
    if not near:
        for j in range(k):
            cand[j] = x[j]
            cand_scale[j] = np.nan
        meta[CAND_N] = 1
        return
    meta[CAND_N] += 1
    a = 1.0 / meta[CAND_N]
    for j in range(k):
        if np.isnan(x[j]):
            continue
        if np.isnan(cand[j]):
            cand[j] = x[j]
            continue
        r = x[j] - cand[j]
        cand[j] += a * r
        s = cand_scale[j] if not np.isnan(cand_scale[j]) else abs(r)
        cand_scale[j] = _floor(s + a * (abs(r) - s), cand[j])
    if meta[CAND_N] < CONFIRM:
        return
    slot = 0
    for m in range(n_modes):
        if counts[m] < counts[slot]:
            slot = m
    for j in range(k):
        centers[slot, j] = cand[j]
        scales[slot, j] = cand_scale[j] * 1.25 if not np.isnan(cand_scale[j]) else np.nan
    counts[slot] = meta[CAND_N]
    if meta[PREVIOUS] == slot:
        meta[PREVIOUS] = -1
    meta[CURRENT] = slot
    meta[SINCE] = 0
    meta[CAND_N] = 0
