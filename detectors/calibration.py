"""Online calibration: a raw statistic -> probability that a normal value is less extreme.

Every detector emits a non-negative raw statistic (bigger = stranger) on its own scale. To make
scores comparable across detectors and signals, each series learns the distribution of its own
raw statistic online, in O(1) per value and five floats of state:

- the median and the 95 % quantile by stochastic approximation (steps scaled by the mean
  absolute deviation, gain 1/n then 1/window, so it starts fast and then tracks slowly);
- above the 95 % quantile, a generalised Pareto tail fitted by the method of moments to the
  excesses (peaks over threshold, as in SPOT), which is what matters for 1e-3 false alarms.

`tail_probability(r)` is P(R >= r) under what was learnt; the score is 1 - that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detectors.state import State, new_state

TAIL = 0.05
"""Probability mass above the tail anchor (the 95 % quantile)."""

FIELDS: dict[str, float] = {
    "n": 0.0,  # values learnt
    "med": 0.0,  # median of the raw statistic
    "q": 0.0,  # 95 % quantile: the tail anchor
    "mad": 0.0,  # mean absolute deviation from the median: SA step scale
    "ne": 0.0,  # excesses learnt
    "m1": 0.0,  # mean excess over q
    "m2": 0.0,  # mean squared excess over q
}

ADAPTIVE_FIELDS: dict[str, float] = {
    **FIELDS,
    "pe": TAIL,  # fraction of values above q: the tail's anchor probability
}

XI_LIMITS = (-0.1, 0.25)
"""Clip of the GPD shape: method-of-moments needs a finite variance (xi < 1/4); below -0.1 the
moment estimate is mostly noise of a light tail, and a too-light tail means too many alarms."""

XI_PRIOR = 200.0
"""The shape's moment estimate is shrunk towards 0 (an exponential tail) with the weight of this
many excesses: from a few hundred excesses it scatters by +-0.15 between series, and the
thresholds it sets scatter so much that the average alarm rate falls well below target."""

QUANTILE_REACH = 10.0
"""The tail anchor stays within this many mean absolute deviations above the median."""


@dataclass(frozen=True, slots=True)
class Calibration:
    """Calibration parameters shared by all series of one detector.

    `min_scale` floors the tail scale, in the detector's raw units: a detector whose statistic
    never moved (a stuck-run length of a noisy signal is always 0) must not call the first
    small move certain.
    """

    window: int = 1000
    tail_window: int = 500
    min_scale: float = 1e-3
    adaptive_tail: bool = False
    """Anchor the tail at the observed fraction of values above q instead of TAIL: for a
    statistic with an atom at 0 (a value inside its band), where q sits on the atom."""

    @property
    def fields(self) -> dict[str, float]:
        return ADAPTIVE_FIELDS if self.adaptive_tail else FIELDS

    def new_state(self, n: int) -> State:
        return new_state(self.fields, n)

    def tail_probability(self, st: State, r: np.ndarray) -> np.ndarray:
        """P(R >= r) for each series; 1 where r is NaN or nothing was learnt yet."""
        return _tail_probability(st, r, self._anchor(st), self.min_scale)

    def quantile(self, st: State, p: float | np.ndarray) -> np.ndarray:
        """The raw value whose tail probability is `p` (p < TAIL): for the detectors' bands."""
        xi, sigma = _gpd(st, self.min_scale)
        ratio = np.log(np.maximum(self._anchor(st), p) / p)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            gpd = sigma * np.expm1(xi * ratio) / np.where(np.abs(xi) < 1e-9, 1.0, xi)
        excess = np.where(np.abs(xi) < 1e-9, sigma * ratio, gpd)
        return np.asarray(st["q"] + excess)

    def learn(self, st: State, r: np.ndarray, mask: np.ndarray) -> None:
        """Learn the raw values `r` where `mask` is true (in place)."""
        _learn(st, r, mask, self.window, self.tail_window, self.min_scale, self.adaptive_tail)

    def _anchor(self, st: State) -> np.ndarray | float:
        """Probability mass above q: learnt with `adaptive_tail`, else TAIL by construction."""
        return st["pe"] if self.adaptive_tail else TAIL


class CalibrationStack:
    """The calibrations of a whole suite as one: state fields of shape (detectors, series).

    Every detector calibrates the same way with its own parameters, so one time step calibrates
    and learns every detector's statistic in one set of array operations instead of one set per
    detector (the per-call overhead dominated). Rows of detectors without an adaptive tail carry
    `pe` fixed at TAIL, which is what they anchor at; values equal the per-detector ones exactly.
    """

    def __init__(self, calibrations: Sequence[Calibration]) -> None:
        self.calibrations = tuple(calibrations)
        cals = self.calibrations
        self.window = np.array([[c.window] for c in cals], dtype=np.float64)
        self.tail_window = np.array([[c.tail_window] for c in cals], dtype=np.float64)
        self.min_scale = np.array([[c.min_scale] for c in cals], dtype=np.float64)
        self.adaptive = np.array([[float(c.adaptive_tail)] for c in cals])
        """Columns of each detector's parameters, broadcast over its row."""

    def stack(self, states: Sequence[State]) -> State:
        """One stacked state from each detector's state (same series)."""
        n = len(states[0]["n"])
        tail = np.full(n, TAIL)
        return {name: np.stack([st.get(name, tail) for st in states]) for name in ADAPTIVE_FIELDS}

    def unstack(self, stacked: State, states: Sequence[State]) -> None:
        """Write the stacked rows back into each detector's state (in place)."""
        for d, st in enumerate(states):
            for name in st:
                st[name][...] = stacked[name][d]

    def row(self, stacked: State, d: int) -> State:
        """Detector `d`'s state as views of the stack (for its own `quantile`)."""
        return {name: stacked[name][d] for name in self.calibrations[d].fields}

    def tail_probability(self, st: State, r: np.ndarray) -> np.ndarray:
        """`Calibration.tail_probability` of every detector's row at once."""
        return _tail_probability(st, r, st["pe"], self.min_scale)

    def learn(self, st: State, r: np.ndarray, mask: np.ndarray) -> None:
        """`Calibration.learn` of every detector's row at once (in place)."""
        _learn(st, r, mask, self.window, self.tail_window, self.min_scale, self.adaptive)


Param = float | np.ndarray
"""A calibration parameter: one number, or a column of one per detector of a stack."""


def _tail_probability(
    st: State, r: np.ndarray, pe: np.ndarray | float, min_scale: Param
) -> np.ndarray:
    med, q = st["med"], st["q"]
    xi, sigma = _gpd(st, min_scale)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        below_med = 1.0 - 0.5 * r / np.maximum(med, 1e-300)
        body = 0.5 - (0.5 - pe) * (r - med) / np.maximum(q - med, 1e-300)
        y = np.maximum(r - q, 0.0) / sigma
        exponential = np.abs(xi) < 1e-9
        base = np.maximum(1.0 + xi * y, 0.0)
        gpd = np.exp(-np.log(base) / np.where(exponential, 1.0, xi))
        tail = pe * np.where(exponential, np.exp(-y), gpd)
    p = np.where(r > q, tail, np.where(r > med, body, below_med))
    p = np.where(np.isnan(r) | (st["n"] < 1), 1.0, p)
    # minimum/maximum rather than np.clip: same values, a fifth of the call overhead
    return np.minimum(np.maximum(p, 0.0), 1.0)


def _learn(
    st: State,
    r: np.ndarray,
    mask: np.ndarray,
    window: Param,
    tail_window: Param,
    min_scale: Param,
    adaptive: bool | np.ndarray,
) -> None:
    valid = mask & np.isfinite(r)
    if not valid.any():
        return
    r = np.where(valid, r, 0.0)
    n = st["n"] + valid
    first = valid & (n == 1)
    gain = np.where(valid, np.maximum(1.0 / np.maximum(n, 1.0), 1.0 / window), 0.0)
    med, q = st["med"], st["q"]
    scale = np.maximum(st["mad"], min_scale) * gain
    exceed = valid & (r > q) & ~first
    new_med = med + scale * np.where(r > med, 1.0, -1.0)
    new_q = q + scale * np.where(r > q, (1.0 - TAIL) / TAIL, -1.0)
    st["mad"] += gain * (np.abs(r - med) - st["mad"])
    if adaptive is True:
        st["pe"] += gain * (np.where(r > q, 1.0, 0.0) - st["pe"])
    elif adaptive is not False:  # a stack: rows without an adaptive tail keep pe = TAIL
        st["pe"] += adaptive * (gain * (np.where(r > q, 1.0, 0.0) - st["pe"]))
    # Raw statistics are >= 0; an atom at 0 (a stuck run of a noisy signal) must stay at 0.
    st["med"] = np.maximum(np.where(first, r, new_med), 0.0)
    # An outlier among the first values must not park the anchor far out: SA steps shrink
    # as 1/n, so it would take very long to come back. Keep it within reach of the body.
    ceiling = st["med"] + QUANTILE_REACH * np.maximum(st["mad"], min_scale)
    st["q"] = np.minimum(np.maximum(np.where(first, r, new_q), st["med"]), ceiling)
    ne = st["ne"] + exceed
    tail_gain = np.where(exceed, np.maximum(1.0 / np.maximum(ne, 1.0), 1.0 / tail_window), 0.0)
    excess = r - q
    st["m1"] += tail_gain * (excess - st["m1"])
    st["m2"] += tail_gain * (excess * excess - st["m2"])
    st["ne"] = ne
    st["n"] = n


def _gpd(st: State, min_scale: Param) -> tuple[np.ndarray, np.ndarray]:
    """GPD shape and scale by the method of moments; exponential until enough excesses."""
    m1 = st["m1"]
    var = np.maximum(st["m2"] - m1 * m1, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(var > 0, m1 * m1 / var, 1.0)
    enough = st["ne"] >= 10
    weight = st["ne"] / (st["ne"] + XI_PRIOR)
    shape = np.minimum(np.maximum(0.5 * (1.0 - ratio), XI_LIMITS[0]), XI_LIMITS[1])
    xi = np.where(enough, shape * weight, 0.0)
    sigma = np.where(enough, m1 * (1.0 - xi), np.maximum(m1, st["mad"]))
    return xi, np.maximum(sigma, min_scale)
