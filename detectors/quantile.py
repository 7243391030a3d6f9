"""Quantile band and IQR fences: how far a value lies outside the band of its usual values.

Both track a low and a high quantile of the signal (and the median, its expected value) by
stochastic approximation: each value nudges each estimate up or down by a step proportional to
the signal's mean absolute deviation, with gain 1/n at first and 1/`span` later, so the band
follows a slowly changing signal in O(1) state. The statistic is the distance outside the band in
band widths (0 inside). Most values score exactly 0, so its calibration anchors the tail at the
observed fraction of values outside the band (not a fixed 5 %) and fits the tail to the
excursions alone; a continuous robust z was measured and ranked NAB's anomalies far worse.

- `quantile` (0.3 % - 99.7 %, long memory): a value beyond what the signal has reached for weeks,
  the "new high" that NAB's best detectors lean on;
- `iqr` (quartiles, shorter memory): Tukey's fences, `stat > 1.5` is the textbook outlier.

>>> import numpy as np
>>> det = QuantileBand()
>>> st = det.new_state(1)
>>> for v in np.random.default_rng(0).normal(10.0, 1.0, 3000):
...     det.learn(st, np.array([v]), np.zeros(1), np.ones(1, bool))
>>> lo, hi = float(st["lo"][0]), float(st["hi"][0])
>>> bool(6.8 < lo < 7.8 and 12.2 < hi < 13.2)  # about 10 -+ 2.75
True
>>> float(det.raw(st, np.array([10.0]), np.zeros(1)).stat[0])  # inside the band
0.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist
from typing import ClassVar

import numpy as np

from detectors.calibration import Calibration
from detectors.protocol import Capabilities, Raw
from detectors.state import Init, State, new_state

RARE_JUMP = 0.1
"""Largest step on a rare value, in scales (so that early, large gains do not overshoot)."""
NORMAL_REACH = 1.2533
"""Mean absolute deviation -> standard deviation, for a normal distribution."""


def sa_quantile(
    q: np.ndarray, x: np.ndarray, tau: float, gain: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """One stochastic-approximation step of the `tau` quantile estimate `q` towards `x`.

    Up and down steps are in the odds ratio whose balance point is P(X > q) = 1 - tau. The gain
    is capped at the rarer side's probability, so a jump on a rare value is at most one `scale`:
    early on (gain 1/n) an extreme quantile would otherwise overshoot by tens of scales.
    """
    rare = min(tau, 1.0 - tau)
    step = np.minimum(gain, RARE_JUMP * rare) * scale
    moved: np.ndarray = q + step * np.where(x > q, tau / rare, -(1.0 - tau) / rare)
    return moved


@dataclass(frozen=True, slots=True)
class QuantileBand(Capabilities):
    kind: ClassVar[str] = "quantile"
    state_version: ClassVar[int] = 1
    late_start: ClassVar[bool] = True
    fields: ClassVar[dict[str, Init]] = {
        "n": 0.0,
        "med": 0.0,
        "lo": 0.0,
        "hi": 0.0,
        "mad": 0.0,
    }

    tau: float = 0.003
    """The band is [tau, 1 - tau] quantiles."""
    span: int = 5000
    clip: float = 10.0
    """Learning winsorises the deviation that the step scale learns at this many scales: one
    glitch must not widen the band (and every step) for thousands of values."""
    calibration: Calibration = field(
        default_factory=lambda: Calibration(
            min_scale=0.05, window=5000, tail_window=2000, adaptive_tail=True
        )
    )

    def new_state(self, n: int) -> State:
        return new_state(self.fields, n)

    def _width(self, st: State) -> np.ndarray:
        width: np.ndarray = np.maximum(st["hi"] - st["lo"], 1e-9 * (np.abs(st["med"]) + 1.0))
        return width

    def raw(self, st: State, x: np.ndarray, t: np.ndarray) -> Raw:
        with np.errstate(invalid="ignore"):
            outside = np.maximum(np.maximum(x - st["hi"], st["lo"] - x), 0.0)
            stat = np.where(st["n"] >= 10, outside / self._width(st), np.nan)
        # An extreme quantile needs ~3/tau values to find its place: no verdict before, while
        # the calibration already learns (a late starter: it does not hold the source's warm-up).
        judged = st["n"] >= min(3.0 / min(self.tau, 1.0 - self.tau), self.span)
        return Raw(np.where(judged, stat, np.nan), st["med"].copy(), stat)

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        m = mask & ~np.isnan(x)
        xs = np.where(m, x, 0.0)
        n = st["n"] + m
        first = m & (n == 1)
        gain = np.where(m, np.maximum(1.0 / np.maximum(n, 1.0), 1.0 / self.span), 0.0)
        scale = np.maximum(st["mad"], 1e-12 * (np.abs(st["med"]) + 1.0))
        floor = 1e-9 * (np.abs(st["med"]) + 1.0)
        limit = np.where(st["n"] >= 10, self.clip * np.maximum(st["mad"], floor), np.inf)
        deviation = np.minimum(np.abs(xs - st["med"]), limit)
        mad = st["mad"] + gain * (deviation - st["mad"])
        st["mad"] = np.where(first, 0.0, mad)  # the first value has no spread yet
        for name, tau in (("med", 0.5), ("lo", self.tau), ("hi", 1.0 - self.tau)):
            moved = sa_quantile(st[name], xs, tau, gain, scale)
            st[name] = np.where(first, xs, np.where(m, moved, st[name]))
        # Never narrower than a normal distribution's band of the same spread: an extreme
        # quantile takes ~1/tau values to find its place, and a band too narrow meanwhile alarms.
        reach = NORMAL_REACH * float(NormalDist().inv_cdf(1.0 - self.tau)) * st["mad"]
        st["lo"] = np.minimum(st["lo"], st["med"] - reach)
        st["hi"] = np.maximum(st["hi"], st["med"] + reach)
        st["n"] = n

    def band(self, st: State, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = self._width(st)
        return st["lo"] - r * w, st["hi"] + r * w


@dataclass(frozen=True, slots=True)
class Iqr(QuantileBand):
    """Tukey's fences on quartiles that follow the last few hundred values."""

    kind: ClassVar[str] = "iqr"
    tau: float = 0.25
    span: int = 500
