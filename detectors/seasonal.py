"""Seasonal: how far a value is from what this phase of its rhythm usually brings.

Each series finds its own period (`detectors.periods`: autocorrelation of a coarse history it
keeps, re-checked every `RING // 8` new buckets): a day or a week of local wall-clock time
(`LocalClock`, DST-aware), or a rhythm counted in samples for signals that have no calendar. Until
a period is found the profile learns the day (the commonest rhythm), so a daily series is ready
as soon as the day is confirmed; a different period found later restarts the profile.

The profile has `bins` phase bins; per bin an exponentially weighted level and mean absolute
deviation (winsorised, a memory of `span` periods whatever the sampling rate). The statistic is
the distance from the bin's level in the bin's deviations: a daily peak is normal at its hour, a
daytime level at night is not.

It judges only a series whose rhythm is real: a period found, `min_periods` periods of profile,
and the profile still predicting better than the recent level does (squared errors, both tracked
online, `skill` = the ratio it must beat). Otherwise no verdict (NaN), and the other detectors
alone judge the series.

>>> import numpy as np
>>> det = Seasonal()
>>> st = det.new_state(1)
>>> for k in range(4 * 288):  # four days of 5-minute samples, busy from 06:00 to 18:00
...     t = np.array([300.0 * k])
...     det.learn(st, np.array([10.0 * (0.25 <= (k % 288) / 288 < 0.75)]), t, np.ones(1, bool))
>>> describe(st)[0]
(86400.0, 'seconds')
>>> raw = det.raw(st, np.array([10.0]), np.array([4 * 86_400.0 + 3_600]))  # day level at 01:00
>>> bool(raw.stat[0] > 5), float(raw.expected[0])
(True, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from detectors.calibration import Calibration
from detectors.clock import LocalClock
from detectors.jit import kernel, pairwise_sum
from detectors.periods import DAY, MONDAY, RING, autocorrelation, read_period
from detectors.protocol import Raw
from detectors.state import Init, State, new_state

SECONDS, SAMPLES = 0.0, 1.0
"""Units of a period (state field `unit`)."""
HORIZON = 28 * DAY
"""The coarse history stops coarsening once it spans this long (weekly rhythms need two weeks)."""
MIN_COUNT = 12
"""Values a phase bin needs before it is judged against (measured on NAB: judging bins after
three periods' worth on coarse data cost two points, from early verdicts on poor deviations)."""
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


@dataclass(frozen=True, slots=True)
class Seasonal:
    kind: ClassVar[str] = "seasonal"
    state_version: ClassVar[int] = 2
    explains: ClassVar[tuple[str, ...]] = ("persist", "level_shift")
    """Where it judges, a level that moves with the phase is its business: these detectors'
    verdicts on the same value are set aside, and its band describes the signal (see `Scorer`)."""
    late_start: ClassVar[bool] = True
    """It starts judging days after a source appears: its own warm-up gives no verdict instead
    of holding the whole source in warm-up (see `Scorer`)."""

    clock: LocalClock = field(default_factory=LocalClock)
    periods: tuple[str, ...] = ("day", "week", "samples")
    """Period candidates: `day`, `week` (local calendar), `samples` (a rhythm in samples)."""
    bins: int = 48
    signals: tuple[str, ...] = ("*",)
    """Signal-name patterns it runs on (`!pattern` excludes); applied by the `Scorer`."""
    span: float = 2.0
    """Memory of a bin, in periods: short enough to follow a changing rhythm, and the spread of
    its estimate keeps the calibrated alarm rate on target (measured: 8 periods gave 3e-4 alarms
    at a target of 1e-3 on a noisy daily pattern, 2 gives 6.8e-4)."""
    level_span: float = 20.0
    """Memory of the recent level the profile must beat, in samples."""
    min_periods: float = 2.0
    skill: float = 0.7
    clip: float = 6.0
    calibration: Calibration = field(default_factory=lambda: Calibration(min_scale=0.05))
    fields: dict[str, Init] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = set(self.periods) - {"day", "week", "samples"}
        if unknown:
            raise ValueError(f"unknown period candidates {sorted(unknown)}")
        if self.bins < 2:
            raise ValueError("a seasonal profile needs at least two bins")
        b = self.bins
        object.__setattr__(
            self,
            "fields",
            {
                "start": np.nan,  # when the profile's period hypothesis began (s or samples)
                "period": DAY if "day" in self.periods else 0.0,  # the hypothesis (0: none)
                "unit": SECONDS,
                "found": 0.0,  # 1: the history confirmed the period
                "strength": 0.0,  # its autocorrelation
                "nb": float(b),  # bins in use: fewer when a period holds fewer values than bins
                "n": 0.0,  # sample index (values, plus the ones gaps skipped): rhythms in samples
                "last_t": np.nan,
                "dt": 0.0,  # typical sampling interval (EWMA)
                "level": 0.0,  # recent level (EWMA): the baseline the profile must beat
                "nl": 0.0,
                "err_level": 0.0,  # EWMA of squared errors of the recent level
                "err_season": 0.0,  # EWMA of squared errors of the profile
                "mean": (0.0, b),
                "dev": (0.0, b),
                "count": (0.0, b),
                "ring": (0.0, RING),  # coarse history: means of `m` consecutive values
                "filled": 0.0,
                "m": 1.0,
                "acc": 0.0,  # sum and count of the bucket being filled
                "acc_n": 0.0,
                "ring_t0": np.nan,  # time span the history covers
                "ring_t1": np.nan,
                "fresh": 0.0,  # buckets since the last period check
            },
        )

    def new_state(self, n: int) -> State:
        return new_state(self.fields, n)

    # -- the detector role (per-series loops compiled in the kernels below) -------------------

    def _where(self, st: State, t: np.ndarray) -> Place:
        """The fields that place a value at `t` in its rhythm, and its local clock time."""
        local = self.clock.local(t)
        return (
            st["n"],
            st["last_t"],
            st["dt"],
            st["start"],
            st["period"],
            st["unit"],
            st["nb"],
            t,
            local,
        )

    def active(self, st: State, t: np.ndarray) -> np.ndarray:
        """Series whose rhythm is found, established, and worth more than their recent level."""
        out = np.empty(len(t), dtype=bool)
        judged = (st["found"], st["err_season"], st["err_level"])
        _active(*self._where(st, t), *judged, self.min_periods, self.skill, out)
        return out

    def raw(self, st: State, x: np.ndarray, t: np.ndarray) -> Raw:
        stat, expected, learn_stat = np.empty_like(x), np.empty_like(x), np.empty_like(x)
        profile = (st["mean"], st["dev"], st["count"])
        judged = (st["found"], st["err_season"], st["err_level"])
        params = (self.min_periods, self.skill)
        _raw(*self._where(st, t), *profile, *judged, x, *params, stat, expected, learn_stat)
        # The calibration learns the distances of a mature profile only (a young one's are wider
        # and would stay in the tail's memory), whether or not the rhythm is confirmed yet.
        return Raw(stat, expected, learn_stat)

    def band(self, st: State, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lower, upper = np.empty_like(r), np.empty_like(r)
        _band(*self._where(st, t), st["mean"], st["dev"], st["count"], r, lower, upper)
        return lower, upper

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        due = np.zeros(len(x), dtype=bool)
        _learn(
            *self._where(st, t),
            st["mean"],
            st["dev"],
            st["count"],
            st["level"],
            st["nl"],
            st["err_level"],
            st["err_season"],
            st["ring"],
            st["filled"],
            st["m"],
            st["acc"],
            st["acc_n"],
            st["ring_t0"],
            st["ring_t1"],
            st["fresh"],
            x,
            mask,
            np.array([self.span, self.level_span, float(self.bins), self.clip]),
            due,
        )
        if not due.any():
            return
        rows = np.flatnonzero(due)
        filled = st["filled"][rows].astype(np.intp)
        for length in np.unique(filled).tolist():  # one FFT per history length
            group = rows[filled == length]
            acf = autocorrelation(st["ring"][group, :length])
            for r, row in zip(group.tolist(), acf, strict=True):
                self._check(st, r, row)

    def _check(self, st: State, r: int, acf: np.ndarray) -> None:
        """Read one series' period from its history's autocorrelation; adopt, confirm or drop."""
        samples = st["filled"][r] * st["m"][r] + st["acc_n"][r]
        bucket_seconds = (st["ring_t1"][r] - st["ring_t0"][r]) / max(samples - 1, 1) * st["m"][r]
        found = read_period(acf, float(st["m"][r]), bucket_seconds, self.periods, st["dt"][r])
        if found is None:
            if st["err_season"][r] >= st["err_level"][r]:
                st["found"][r] = 0.0  # no rhythm in the history, none in the profile's errors
            return
        length, unit, strength = found
        values = length if unit == SAMPLES else length / max(st["dt"][r], 1e-9)
        nb = float(np.clip(np.round(values), 4, self.bins))  # about a value per bin at least
        same = unit == st["unit"][r] and abs(length - st["period"][r]) <= 0.05 * st["period"][r]
        if same and (st["found"][r] > 0 or nb == st["nb"][r]):
            st["found"][r], st["strength"][r] = 1.0, strength
            if unit == SAMPLES and length >= 16 * st["m"][r]:
                # refine the length while the history resolves it, keeping the profile's phase
                old = st["period"][r]
                new = old + 0.3 * (length - old)
                frac = ((st["n"][r] - st["start"][r]) % old) / old
                st["period"][r], st["start"][r] = new, st["n"][r] - frac * new
            return
        if st["found"][r] > 0 and strength < st["strength"][r] + 0.1:
            return  # a confirmed rhythm gives way only to a clearly stronger one
        # a new period, or the day confirmed with fewer values a day than bins: a new profile
        st["period"][r], st["unit"][r], st["nb"][r] = length, unit, nb
        st["found"][r], st["strength"][r] = 1.0, strength
        st["start"][r] = st["n"][r] if unit == SAMPLES else st["last_t"][r]
        st["mean"][r], st["dev"][r], st["count"][r] = 0.0, 0.0, 0.0
        st["err_season"][r] = st["err_level"][r]


def describe(st: State) -> list[tuple[float, str] | None]:
    """Each series' confirmed period as (length, "seconds" | "samples"), None where none."""
    out: list[tuple[float, str] | None] = []
    for found, length, unit in zip(
        st["found"].tolist(), st["period"].tolist(), st["unit"].tolist(), strict=True
    ):
        out.append((length, "samples" if unit == SAMPLES else "seconds") if found > 0 else None)
    return out


# -- kernels: one series at a time, the same arithmetic in the same order as the numpy code they
# replaced. `n, last_t, dt, start, period, unit, nb, t, local` place a value in its rhythm.


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
def _active(
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
def _raw(
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
def _band(
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
def _learn(
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
