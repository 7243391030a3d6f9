"""The seasonal detector's compiled loops: one series at a time, the same arithmetic in the same
order as the numpy code they replaced.

Apart from `detectors.seasonal` so that the detector reads as its role (what it keeps, when it
judges, how it finds a period) and these as the arithmetic of one value. The first arguments of
every loop, `n, last_t, dt, start, period, unit, nb, t, local` (a `Place`), place a value in its
rhythm.
"""

from __future__ import annotations

import numpy as np

from detectors.jit import kernel, pairwise_sum
from detectors.periods import DAY, MONDAY, RING

SECONDS, SAMPLES = 0.0, 1.0
"""Units of a period (state field `unit`)."""
HORIZON = 28 * DAY
"""The coarse history stops coarsening once it spans this long (weekly rhythms need two weeks)."""
MIN_COUNT = 12
"""Values a phase bin needs before it is judged against (fewer cost NAB points, from early
verdicts on poor deviations: docs/benchmarks.md)."""
CHECK_EVERY = RING // 8
"""New history buckets between two period checks of a series."""
Place = tuple[
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
]
"""The kernels' first arguments, what places a value in its rhythm: fields n, last_t, dt,
start, period, unit, nb, then the values' times and local clock times."""
BIGGEST = float(np.finfo(np.float64).max)
"""What `np.nan_to_num` makes of an infinite clock."""


@kernel
def _index(n: float, last_t: float, dt: float, t: float) -> float:
    """The sample index of a value at `t`: values learnt, plus the sampling intervals a gap
    skipped (missing values), so a rhythm in samples keeps its phase across gaps."""
    slots = np.rint((t - last_t) / dt)
    skipped = np.maximum(slots - 1.0, 0.0) if np.isfinite(slots) and dt > 0 else 0.0
    return float(n + skipped)


@kernel
def _phase_bin(
    start: float, period: float, unit: float, nb: float, local: float, index: float
) -> int:
    """Phase bin of a value at local time `local` and sample index `index`."""
    length = period if period > 0 else DAY
    clock = index - start if unit == SAMPLES else local - MONDAY
    if np.isnan(clock):  # as np.nan_to_num
        clock = 0.0
    elif np.isinf(clock):
        clock = BIGGEST if clock > 0 else -BIGGEST
    phase = np.mod(clock, length) / length
    b = int(phase * nb) if np.isfinite(phase) else 0
    return min(max(b, 0), int(nb - 1.0))


@kernel
def _scale(dev: np.ndarray, count: np.ndarray, i: int, mean: float, bin_dev: float) -> float:
    """A bin's deviation, but at least half the profile's usual one: a bin visited once a
    period estimates it from a few values, and a lucky small one made an alarm."""
    bins = dev.shape[1]
    used = 0
    for b in range(bins):
        if count[i, b] > 0:
            used += 1
    floor = 0.5 * pairwise_sum(dev[i], 0, bins) / max(used, 1)
    return float(np.maximum(bin_dev, floor) + 1e-9 * (np.abs(mean) + 1.0))


@kernel
def _mature(
    start: float, period: float, unit: float, t: float, index: float, periods: float
) -> bool:
    """Whether the current hypothesis has run for `periods` periods (in its own unit)."""
    age = (index if unit == SAMPLES else t) - start
    return bool(age >= periods * period)


@kernel
def active(
    n: np.ndarray,
    last_t: np.ndarray,
    dt: np.ndarray,
    start: np.ndarray,
    period: np.ndarray,
    unit: np.ndarray,
    nb: np.ndarray,
    t: np.ndarray,
    local: np.ndarray,
    found: np.ndarray,
    err_season: np.ndarray,
    err_level: np.ndarray,
    min_periods: float,
    skill: float,
    out: np.ndarray,
) -> None:
    for i in range(len(t)):
        index = _index(n[i], last_t[i], dt[i], t[i])
        old_enough = _mature(start[i], period[i], unit[i], t[i], index, min_periods)
        out[i] = found[i] > 0 and old_enough and err_season[i] < skill * err_level[i]


@kernel
def raw(
    n: np.ndarray,
    last_t: np.ndarray,
    dt: np.ndarray,
    start: np.ndarray,
    period: np.ndarray,
    unit: np.ndarray,
    nb: np.ndarray,
    t: np.ndarray,
    local: np.ndarray,
    mean: np.ndarray,
    dev: np.ndarray,
    count: np.ndarray,
    found: np.ndarray,
    err_season: np.ndarray,
    err_level: np.ndarray,
    x: np.ndarray,
    min_periods: float,
    skill: float,
    stat: np.ndarray,
    expected: np.ndarray,
    learn_stat: np.ndarray,
) -> None:
    for i in range(len(x)):
        index = _index(n[i], last_t[i], dt[i], t[i])
        b = _phase_bin(start[i], period[i], unit[i], nb[i], local[i], index)
        mu, sd = mean[i, b], dev[i, b]
        mature = _mature(start[i], period[i], unit[i], t[i], index, min_periods)
        known = count[i, b] >= MIN_COUNT and mature and period[i] > 0
        distance = np.nan
        if known:
            distance = np.abs(x[i] - mu) / _scale(dev, count, i, mu, sd)
        judged = known and found[i] > 0 and err_season[i] < skill * err_level[i]
        stat[i] = distance if judged else np.nan
        expected[i] = mu if judged else np.nan
        learn_stat[i] = distance


@kernel
def band(
    n: np.ndarray,
    last_t: np.ndarray,
    dt: np.ndarray,
    start: np.ndarray,
    period: np.ndarray,
    unit: np.ndarray,
    nb: np.ndarray,
    t: np.ndarray,
    local: np.ndarray,
    mean: np.ndarray,
    dev: np.ndarray,
    count: np.ndarray,
    r: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
) -> None:
    for i in range(len(r)):
        index = _index(n[i], last_t[i], dt[i], t[i])
        b = _phase_bin(start[i], period[i], unit[i], nb[i], local[i], index)
        mu = mean[i, b]
        scale = _scale(dev, count, i, mu, dev[i, b])
        lower[i] = mu - r[i] * scale
        upper[i] = mu + r[i] * scale


@kernel
def learn(
    n: np.ndarray,
    last_t: np.ndarray,
    dt: np.ndarray,
    start: np.ndarray,
    period: np.ndarray,
    unit: np.ndarray,
    nb: np.ndarray,
    t: np.ndarray,
    local: np.ndarray,
    mean: np.ndarray,
    dev: np.ndarray,
    count: np.ndarray,
    level: np.ndarray,
    nl: np.ndarray,
    err_level: np.ndarray,
    err_season: np.ndarray,
    ring: np.ndarray,
    filled: np.ndarray,
    m: np.ndarray,
    acc: np.ndarray,
    acc_n: np.ndarray,
    ring_t0: np.ndarray,
    ring_t1: np.ndarray,
    fresh: np.ndarray,
    x: np.ndarray,
    mask: np.ndarray,
    params: np.ndarray,
    due: np.ndarray,
) -> None:
    """Learn `x` where `mask` holds; `due` marks the series whose period is to be checked."""
    span, level_span, bins, clip = params[0], params[1], params[2], params[3]
    for i in range(len(x)):
        v, tv = x[i], t[i]
        if not mask[i] or np.isnan(v) or np.isnan(tv):
            continue
        if np.isnan(start[i]):
            start[i] = tv
        n[i] = _index(n[i], last_t[i], dt[i], tv)

        # the profile: how well each baseline predicted this value, before learning it
        b = _phase_bin(start[i], period[i], unit[i], nb[i], local[i], n[i])
        mu, sd, seen_n = mean[i, b], dev[i, b], count[i, b]
        seen = seen_n > 0
        season_err = v - mu if seen else v - level[i]
        visits_l = nl[i] + 1.0
        g = np.maximum(1.0 / visits_l, 1.0 / level_span)
        gl = np.maximum(1.0 / visits_l, 1.0 / (level_span * bins))
        level_err = v - level[i] if visits_l > 1 else 0.0
        err_level[i] += gl * (level_err * level_err - err_level[i])
        err_season[i] += gl * (season_err * season_err - err_season[i])
        level[i] += g * (v - level[i])
        nl[i] = visits_l
        # the bin's level and deviation (winsorised, so one outlier does not move the profile);
        # memory in periods: `span` times the values a bin gets per period
        if period[i] > 0:
            per_period = period[i] if unit[i] == SAMPLES else period[i] / np.maximum(dt[i], 1e-9)
            visits = np.maximum(per_period / nb[i], 1.0)
            a = np.maximum(1.0 / (seen_n + 1.0), 1.0 / (span * visits))
            limit = clip * np.maximum(sd, 1e-12) if seen_n >= 2 else np.inf
            delta = np.minimum(np.maximum(v - mu if seen else 0.0, -limit), limit)
            mean[i, b] = mu + a * delta if seen else v
            dev[i, b] = sd + a * (np.abs(delta) - sd) if seen else 0.0
            count[i, b] = seen_n + 1.0
        n[i] += 1.0

        # the usual sampling interval: gaps (missing values) left out
        gap = tv - last_t[i]
        if gap > 0 and (dt[i] <= 0 or gap < 3 * dt[i]):
            dt[i] = dt[i] + 0.05 * (gap - dt[i]) if dt[i] > 0 else gap
        last_t[i] = tv

        # the coarse history: bucket means of `m` values
        if np.isnan(ring_t0[i]):
            ring_t0[i] = tv
        ring_t1[i] = tv
        acc[i] += v
        acc_n[i] += 1.0
        if acc_n[i] < m[i]:
            continue
        ring[i, int(filled[i])] = acc[i] / acc_n[i]  # < RING: a full history makes room below
        acc[i] = 0.0
        acc_n[i] = 0.0
        filled[i] += 1.0
        fresh[i] += 1.0
        if filled[i] >= RING:
            covered = ring_t1[i] - ring_t0[i]
            if covered < HORIZON / 2:  # halve the resolution: pairs of buckets become one
                for k in range(RING // 2):
                    ring[i, k] = 0.5 * (ring[i, 2 * k] + ring[i, 2 * k + 1])
                ring[i, RING // 2 :] = 0.0
                filled[i] = RING // 2
                m[i] *= 2.0
            else:  # forget the oldest bucket
                ring_t0[i] += covered / RING
                for k in range(RING - 1):
                    ring[i, k] = ring[i, k + 1]
                filled[i] = RING - 1
        if fresh[i] >= CHECK_EVERY and filled[i] >= 2 * CHECK_EVERY:
            fresh[i] = 0.0
            due[i] = True
