"""Online calibration: a raw statistic -> probability that a normal value is less extreme.

Every detector emits a non-negative raw statistic (bigger = stranger) on its own scale. To make
scores comparable across detectors and signals, each series learns the distribution of its own
raw statistic online, in O(1) per value and five floats of state:

- the median and the 95 % quantile by stochastic approximation (steps scaled by the mean
  absolute deviation, gain 1/n then 1/window, so it starts fast and then tracks slowly);
- above the 95 % quantile, a generalised Pareto tail fitted by the method of moments to the
  excesses (peaks over threshold, as in SPOT), which is what matters for 1e-3 false alarms;
- what it learns is winsorised at `LEARN_REACH` tail scales above the anchor, so one wild value
  does not make every later anomaly look ordinary.

`tail_probability(r)` is P(R >= r) under what was learnt; the score is 1 - that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.jit import kernel
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

LEARN_REACH = 40.0
"""Learning winsorises a statistic at this many tail scales above the anchor, once the tail has
10 excesses: one wild value (a glitch of 1e15) would otherwise set the tail's mean excess
and shape for hundreds of thousands of values, and every later anomaly would look ordinary. Far
enough that an honest tail is never cut (NAB measured 10 and 20 scales as fewer anomalies found,
40 as the same), close enough that a 20-sigma value after a glitch still alerts."""


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
        out = np.empty(len(r))
        _tail_kernel(*self._fields(st), r[None, :], self._params()[2], out[None, :])
        return out

    def quantile(self, st: State, p: float | np.ndarray) -> np.ndarray:
        """The raw value whose tail probability is `p` (p < TAIL): for the detectors' bands."""
        n = len(st["n"])
        out = np.empty(n)
        levels = np.broadcast_to(np.asarray(p, dtype=np.float64), (n,))
        _quantile_kernel(*self._fields(st), levels, self._params()[2], out[None, :])
        return out

    def learn(self, st: State, r: np.ndarray, mask: np.ndarray) -> None:
        """Learn the raw values `r` where `mask` is true (in place)."""
        _learn_kernel(*self._fields(st), r[None, :], mask[None, :], *self._params())

    def _fields(self, st: State) -> Fields:
        """The kernels' state arguments, as a stack of one row; pe fixed at TAIL unless it is
        learnt."""
        pe = st["pe"] if self.adaptive_tail else np.full(len(st["n"]), TAIL)
        return _fields({**st, "pe": pe}, np.newaxis)

    def _params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """window, tail_window, min_scale, adaptive: one row's parameters as kernel columns."""
        return (
            np.array([self.window], dtype=np.float64),
            np.array([self.tail_window], dtype=np.float64),
            np.array([self.min_scale], dtype=np.float64),
            np.array([float(self.adaptive_tail)]),
        )


Fields = tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray
]
"""The kernels' state arguments: n, med, q, mad, ne, m1, m2, pe, each (rows, series)."""


def _fields(st: State, cut: Any = Ellipsis) -> Fields:
    """The kernels' state arguments: each field of `st` indexed by `cut` (`np.newaxis` makes a
    single calibration's series one row; a slice takes rows of a stack)."""
    return (
        st["n"][cut],
        st["med"][cut],
        st["q"][cut],
        st["mad"][cut],
        st["ne"][cut],
        st["m1"][cut],
        st["m2"][cut],
        st["pe"][cut],
    )


class CalibrationStack:
    """The calibrations of a whole suite as one: state fields of shape (detectors, series).

    Every detector calibrates the same way with its own parameters, so one time step calibrates
    and learns every detector's statistic in one kernel call instead of one per detector. Rows
    of detectors without an adaptive tail carry `pe` fixed at TAIL, which is what they anchor
    at; values equal the per-detector ones exactly.
    """

    def __init__(self, calibrations: Sequence[Calibration]) -> None:
        self.calibrations = tuple(calibrations)
        cals = self.calibrations
        self.window = np.array([c.window for c in cals], dtype=np.float64)
        self.tail_window = np.array([c.tail_window for c in cals], dtype=np.float64)
        self.min_scale = np.array([c.min_scale for c in cals], dtype=np.float64)
        self.adaptive = np.array([float(c.adaptive_tail) for c in cals])
        """Each detector's parameters, one per row of the stack."""

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

    def tail_probability(
        self, st: State, r: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """`Calibration.tail_probability` of every detector's row at once (into `out`)."""
        p = np.empty(r.shape) if out is None else out
        _tail_kernel(*_fields(st), r, self.min_scale, p)
        return p

    def quantile(self, st: State, d: int, p: np.ndarray) -> np.ndarray:
        """Detector `d`'s `Calibration.quantile` from its row of the stack."""
        out = np.empty(len(p))
        cut = slice(d, d + 1)
        _quantile_kernel(*_fields(st, cut), p, self.min_scale[cut], out[None, :])
        return out

    def learn(self, st: State, r: np.ndarray, mask: np.ndarray) -> None:
        """`Calibration.learn` of every detector's row at once (in place)."""
        params = (self.window, self.tail_window, self.min_scale, self.adaptive)
        _learn_kernel(*_fields(st), r, mask, *params)


# The kernels: fields (n, med, q, mad, ne, m1, m2, pe) of shape (rows, series), parameters one
# per row. Each step is the same arithmetic, in the same order, as the numpy code they replaced.


@kernel
def _gpd(m1: float, m2: float, ne: float, mad: float, min_scale: float) -> tuple[float, float]:
    """GPD shape and scale by the method of moments; exponential until enough excesses."""
    var = np.maximum(m2 - m1 * m1, 0.0)
    ratio = m1 * m1 / var if var > 0 else 1.0
    xi = 0.0
    sigma = np.maximum(m1, mad)
    if ne >= 10:
        weight = ne / (ne + XI_PRIOR)
        shape = np.minimum(np.maximum(0.5 * (1.0 - ratio), XI_LIMITS[0]), XI_LIMITS[1])
        xi = shape * weight
        sigma = m1 * (1.0 - xi)
    return xi, np.maximum(sigma, min_scale)


@kernel
def _tail_kernel(
    n: np.ndarray,
    med: np.ndarray,
    q: np.ndarray,
    mad: np.ndarray,
    ne: np.ndarray,
    m1: np.ndarray,
    m2: np.ndarray,
    pe: np.ndarray,
    r: np.ndarray,
    min_scale: np.ndarray,
    out: np.ndarray,
) -> None:
    rows, series = r.shape
    for d in range(rows):
        for i in range(series):
            x = r[d, i]
            if np.isnan(x) or n[d, i] < 1:
                out[d, i] = 1.0
                continue
            m, top = med[d, i], q[d, i]
            if x > top:
                xi, sigma = _gpd(m1[d, i], m2[d, i], ne[d, i], mad[d, i], min_scale[d])
                y = np.maximum(x - top, 0.0) / sigma
                if np.abs(xi) < 1e-9:
                    p = pe[d, i] * np.exp(-y)
                else:
                    p = pe[d, i] * np.exp(-np.log(np.maximum(1.0 + xi * y, 0.0)) / xi)
            elif x > m:
                p = 0.5 - (0.5 - pe[d, i]) * (x - m) / np.maximum(top - m, 1e-300)
            else:
                p = 1.0 - 0.5 * x / np.maximum(m, 1e-300)
            # minimum/maximum rather than clip: NaN stays NaN, as it did in numpy
            out[d, i] = np.minimum(np.maximum(p, 0.0), 1.0)


@kernel
def _quantile_kernel(
    n: np.ndarray,
    med: np.ndarray,
    q: np.ndarray,
    mad: np.ndarray,
    ne: np.ndarray,
    m1: np.ndarray,
    m2: np.ndarray,
    pe: np.ndarray,
    p: np.ndarray,
    min_scale: np.ndarray,
    out: np.ndarray,
) -> None:
    rows, series = q.shape
    for d in range(rows):
        for i in range(series):
            xi, sigma = _gpd(m1[d, i], m2[d, i], ne[d, i], mad[d, i], min_scale[d])
            ratio = np.log(np.maximum(pe[d, i], p[i]) / p[i])
            exponential = np.abs(xi) < 1e-9
            excess = sigma * ratio if exponential else sigma * np.expm1(xi * ratio) / xi
            out[d, i] = q[d, i] + excess


@kernel
def _learn_kernel(
    n: np.ndarray,
    med: np.ndarray,
    q: np.ndarray,
    mad: np.ndarray,
    ne: np.ndarray,
    m1: np.ndarray,
    m2: np.ndarray,
    pe: np.ndarray,
    r: np.ndarray,
    mask: np.ndarray,
    window: np.ndarray,
    tail_window: np.ndarray,
    min_scale: np.ndarray,
    adaptive: np.ndarray,
) -> None:
    rows, series = r.shape
    up = (1.0 - TAIL) / TAIL
    for d in range(rows):
        floor = min_scale[d]
        for i in range(series):
            x = r[d, i]
            if not mask[d, i] or not np.isfinite(x):
                continue
            if ne[d, i] >= 10:  # winsorised (LEARN_REACH): one glitch must not set the tail
                sigma = _gpd(m1[d, i], m2[d, i], ne[d, i], mad[d, i], floor)[1]
                x = np.minimum(x, q[d, i] + LEARN_REACH * sigma)
            count = n[d, i] + 1.0
            first = count == 1
            gain = np.maximum(1.0 / np.maximum(count, 1.0), 1.0 / window[d])
            m, top = med[d, i], q[d, i]
            scale = np.maximum(mad[d, i], floor) * gain
            new_med = m + scale * (1.0 if x > m else -1.0)
            new_q = top + scale * (up if x > top else -1.0)
            mad[d, i] += gain * (np.abs(x - m) - mad[d, i])
            if adaptive[d] > 0:
                pe[d, i] += gain * ((1.0 if x > top else 0.0) - pe[d, i])
            # Raw statistics are >= 0; an atom at 0 (a stuck run of a noisy signal) stays at 0.
            m_new = np.maximum(x if first else new_med, 0.0)
            med[d, i] = m_new
            # An outlier among the first values must not park the anchor far out: SA steps
            # shrink as 1/n, so it would take very long to come back. Keep it within reach.
            ceiling = m_new + QUANTILE_REACH * np.maximum(mad[d, i], floor)
            q[d, i] = np.minimum(np.maximum(x if first else new_q, m_new), ceiling)
            if x > top and not first:
                excesses = ne[d, i] + 1.0
                tail_gain = np.maximum(1.0 / np.maximum(excesses, 1.0), 1.0 / tail_window[d])
                excess = x - top
                m1[d, i] += tail_gain * (excess - m1[d, i])
                m2[d, i] += tail_gain * (excess * excess - m2[d, i])
                ne[d, i] = excesses
            n[d, i] = count
