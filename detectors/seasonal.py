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
alone judge the series. The per-series loops are compiled in `detectors.seasonal_kernels`.

>>> import numpy as np
>>> det = Seasonal()
>>> st = det.new_state(1)
>>> for k in range(4 * 288):  # four days of 5-minute samples, busy from 06:00 to 18:00
...     t = np.array([300.0 * k])
...     det.learn(st, np.array([10.0 * (0.25 <= (k % 288) / 288 < 0.75)]), t, np.ones(1, bool))
>>> describe(st)[0]
Period(length=86400.0, unit='seconds')
>>> raw = det.raw(st, np.array([10.0]), np.array([4 * 86_400.0 + 3_600]))  # day level at 01:00
>>> bool(raw.stat[0] > 5), float(raw.expected[0])
(True, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from detectors import seasonal_kernels as kernels
from detectors.calibration import Calibration
from detectors.clock import LocalClock
from detectors.periods import DAY, RING, autocorrelation, read_period
from detectors.protocol import Period, Raw
from detectors.seasonal_kernels import SAMPLES, SECONDS, Place
from detectors.state import Init, State, new_state


@dataclass(frozen=True, slots=True)
class Seasonal:
    kind: ClassVar[str] = "seasonal"
    state_version: ClassVar[int] = 2
    rarity: ClassVar[bool] = False
    describes_band: ClassVar[bool] = False
    describes_rhythm: ClassVar[bool] = True
    switch_explains: ClassVar[bool] = True
    """Score messages carry the period it confirmed (`rhythm`)."""
    rhythm_fields: ClassVar[tuple[str, ...]] = ("found", "period", "unit")
    """What `rhythm` reads (`describe`)."""
    explains: ClassVar[tuple[str, ...]] = ("persist", "level_shift")
    """Where it judges, a level that moves with the phase is its business: these detectors'
    verdicts on the same value are set aside, and its band describes the signal (see
    `detectors.steps`)."""
    late_start: ClassVar[bool] = True
    """It starts judging days after a source appears: its own warm-up gives no verdict instead
    of holding the whole source in warm-up (see `detectors.steps`)."""

    clock: LocalClock = field(default_factory=LocalClock)
    periods: tuple[str, ...] = ("day", "week", "samples")
    """Period candidates: `day`, `week` (local calendar), `samples` (a rhythm in samples)."""
    bins: int = 48
    signals: tuple[str, ...] = ("*",)
    """Signal-name patterns it runs on (`!pattern` excludes); applied by the `Scorer`."""
    span: float = 2.0
    """Memory of a bin, in periods: short enough to follow a changing rhythm, and the spread of
    its estimate keeps the calibrated alarm rate on target (longer memories alarmed well below
    it on a noisy daily pattern: docs/benchmarks.md)."""
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

    # -- the detector role (per-series loops compiled in `seasonal_kernels`) -------------------

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
        kernels.active(*self._where(st, t), *judged, self.min_periods, self.skill, out)
        return out

    def raw(self, st: State, x: np.ndarray, t: np.ndarray) -> Raw:
        stat, expected, learn_stat = np.empty_like(x), np.empty_like(x), np.empty_like(x)
        profile = (st["mean"], st["dev"], st["count"])
        judged = (st["found"], st["err_season"], st["err_level"])
        params = (self.min_periods, self.skill)
        kernels.raw(*self._where(st, t), *profile, *judged, x, *params, stat, expected, learn_stat)
        # The calibration learns the distances of a mature profile only (a young one's are wider
        # and would stay in the tail's memory), whether or not the rhythm is confirmed yet.
        return Raw(stat, expected, learn_stat)

    def band(self, st: State, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lower, upper = np.empty_like(r), np.empty_like(r)
        kernels.band(*self._where(st, t), st["mean"], st["dev"], st["count"], r, lower, upper)
        return lower, upper

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        due = np.zeros(len(x), dtype=bool)
        kernels.learn(
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

    def rhythm(self, st: State) -> list[Period | None]:
        return describe(st)

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


def describe(st: State) -> list[Period | None]:
    """Each series' confirmed period as (length, "seconds" | "samples"), None where none."""
    out: list[Period | None] = []
    for found, length, unit in zip(
        st["found"].tolist(), st["period"].tolist(), st["unit"].tolist(), strict=True
    ):
        unit_name = "samples" if unit == SAMPLES else "seconds"
        out.append(Period(length, unit_name) if found > 0 else None)
    return out
