"""Seasonal: how far a value is from what this time of the day usually brings.

A profile of the period (`bins` phase bins of a calendar day by default, phase taken from the
timestamp, so gaps and irregular sampling do not shift it): per bin an exponentially weighted
level and mean absolute deviation, learnt online. The statistic is the distance from the bin's
level in the bin's deviations, so a daily peak is normal at its hour and a daytime level at night
is not.

It judges only a series whose rhythm is real: after `min_periods` periods, and while the profile
predicts the series better than its recent level does (squared errors, both tracked online,
`skill` = the ratio it must beat). A series without the rhythm gets no verdict (NaN) and is left
to the other detectors. Phase bins use UTC plus `offset` seconds (a fixed time-zone offset).

>>> import numpy as np
>>> det = Seasonal(period=96.0)
>>> st = det.new_state(1)
>>> for k in range(2000):
...     t = np.array([float(k)])
...     det.learn(st, np.array([10.0 * (k % 96 < 48)]), t, np.ones(1, bool))
>>> raw = det.raw(st, np.array([10.0]), np.array([2000.0 + 70]))  # "day" level at "night"
>>> bool(raw.stat[0] > 5), float(raw.expected[0])
(True, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from detectors.calibration import Calibration
from detectors.protocol import Raw
from detectors.state import Init, State, new_state

DAY = 86_400.0
BINS = 48
"""Phase bins per period (half-hours of a day): part of the state layout, so fixed."""


@dataclass(frozen=True, slots=True)
class Seasonal:
    kind: ClassVar[str] = "seasonal"
    state_version: ClassVar[int] = 1
    explains: ClassVar[tuple[str, ...]] = ("persist", "level_shift")
    """Where it judges, a level that moves with the time of day is its business: these
    detectors' verdicts on the same value are set aside (see `Scorer`)."""
    late_start: ClassVar[bool] = True
    """It starts judging days after a source appears: its own warm-up gives no verdict instead
    of holding the whole source in warm-up (see `Scorer`)."""
    fields: ClassVar[dict[str, Init]] = {
        "t0": np.nan,  # first timestamp seen
        "level": 0.0,  # recent level (EWMA): the baseline the profile must beat
        "nl": 0.0,
        "err_level": 0.0,  # EWMA of squared errors of the recent level
        "err_season": 0.0,  # EWMA of squared errors of the profile
        "mean": (0.0, BINS),
        "dev": (0.0, BINS),
        "count": (0.0, BINS),
        "bin": 0.0,  # bin of the last value (for `band`)
    }

    period: float = DAY
    bins: ClassVar[int] = BINS
    span: float = 8.0
    """Memory of a bin, in its own updates (about that many periods)."""
    level_span: float = 20.0
    """Memory of the recent level the profile must beat, in samples."""
    min_periods: float = 2.0
    skill: float = 0.7
    offset: float = 0.0
    clip: float = 6.0
    calibration: Calibration = field(default_factory=lambda: Calibration(min_scale=0.05))

    def __post_init__(self) -> None:
        if self.period <= 0:
            raise ValueError("a seasonal profile needs a positive period")

    def new_state(self, n: int) -> State:
        return new_state(self.fields, n)

    def _bin(self, t: np.ndarray) -> np.ndarray:
        phase = np.mod(np.nan_to_num(t) + self.offset, self.period) / self.period
        out: np.ndarray = np.minimum((phase * self.bins).astype(np.intp), self.bins - 1)
        return out

    def _pick(self, st: State, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = np.arange(len(b))
        return st["mean"][rows, b], st["dev"][rows, b], st["count"][rows, b]

    def active(self, st: State, t: np.ndarray) -> np.ndarray:
        """Series whose rhythm is established and worth more than their recent level."""
        with np.errstate(invalid="ignore"):
            old_enough = (t - st["t0"]) >= self.min_periods * self.period
        out: np.ndarray = old_enough & (st["err_season"] < self.skill * st["err_level"])
        return out

    def raw(self, st: State, x: np.ndarray, t: np.ndarray) -> Raw:
        b = self._bin(t)
        mean, dev, count = self._pick(st, b)
        with np.errstate(invalid="ignore", divide="ignore"):
            known = (count >= 12) & ((t - st["t0"]) >= self.period)
            stat = np.where(known, np.abs(x - mean) / (dev + 1e-9 * (np.abs(mean) + 1.0)), np.nan)
        judged = self.active(st, t) & known
        # The calibration learns the distances once a period has been seen, so it is warm by
        # the time the rhythm is established and verdicts begin.
        return Raw(np.where(judged, stat, np.nan), np.where(judged, mean, np.nan), stat)

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        m = mask & ~np.isnan(x) & ~np.isnan(t)
        if not m.any():
            return
        rows = np.flatnonzero(m)
        b = self._bin(t)[rows]
        v = x[rows]
        mean = st["mean"][rows, b]
        dev = st["dev"][rows, b]
        count = st["count"][rows, b]
        # how well each baseline predicted this value, before learning it
        seen = count > 0
        season_err = np.where(seen, v - mean, v - st["level"][rows])
        nl = st["nl"][rows] + 1
        g = np.maximum(1.0 / nl, 1.0 / self.level_span)
        gl = np.maximum(1.0 / nl, 1.0 / (self.level_span * self.bins))
        level_err = np.where(nl > 1, v - st["level"][rows], 0.0)
        st["err_level"][rows] += gl * (level_err**2 - st["err_level"][rows])
        st["err_season"][rows] += gl * (season_err**2 - st["err_season"][rows])
        st["level"][rows] += g * (v - st["level"][rows])
        st["nl"][rows] = nl
        # the bin's level and deviation (winsorised, so one outlier does not move the profile)
        n = count + 1
        a = np.maximum(1.0 / n, 1.0 / self.span)
        limit = np.where(count >= 2, self.clip * np.maximum(dev, 1e-12), np.inf)
        delta = np.clip(np.where(seen, v - mean, 0.0), -limit, limit)
        st["mean"][rows, b] = np.where(seen, mean + a * delta, v)
        st["dev"][rows, b] = np.where(seen, dev + a * (np.abs(delta) - dev), 0.0)
        st["count"][rows, b] = n
        st["t0"][rows] = np.where(np.isnan(st["t0"][rows]), t[rows], st["t0"][rows])
        st["bin"][rows] = b

    def band(self, st: State, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b = st["bin"].astype(np.intp)
        mean, dev, _ = self._pick(st, b)
        return mean - r * dev, mean + r * dev
