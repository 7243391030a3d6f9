"""Spike: a robust z-score of the first difference, so one sudden jump stands out on any level.

The usual step is an exponentially weighted mean of the differences and its scale the weighted
mean absolute deviation; learning winsorises each difference at `clip` scales, so a spike does
not teach the detector that spikes are normal.

>>> import numpy as np
>>> det = Spike()
>>> st = det.new_state(1)
>>> for v in [1.0, 1.2, 0.9, 1.1, 1.0, 0.8, 1.1, 1.0] * 2:
...     det.learn(st, np.array([v]), np.zeros(1), np.ones(1, bool))
>>> bool(det.raw(st, np.array([9.0]), np.zeros(1)).stat[0] > 20)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from detectors.calibration import Calibration
from detectors.jit import kernel
from detectors.protocol import Capabilities, Raw
from detectors.state import Init, State, new_state

MAD_TO_SD = 1.2533  # mean absolute deviation -> standard deviation for a normal distribution


@dataclass(frozen=True, slots=True)
class Spike(Capabilities):
    kind: ClassVar[str] = "spike"
    state_version: ClassVar[int] = 1
    fields: ClassVar[dict[str, Init]] = {"n": 0.0, "prev": np.nan, "dmean": 0.0, "dmad": 0.0}

    span: int = 200
    clip: float = 6.0
    calibration: Calibration = field(default_factory=lambda: Calibration(min_scale=0.05))

    def new_state(self, n: int) -> State:
        return new_state(self.fields, n)

    def raw(self, st: State, x: np.ndarray, t: np.ndarray) -> Raw:
        expected = st["prev"] + st["dmean"]
        stat = np.empty_like(x)
        _raw(st["n"], st["prev"], st["dmad"], expected, x, stat)
        return Raw(stat, expected)

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        _learn(st["n"], st["prev"], st["dmean"], st["dmad"], x, mask, float(self.span), self.clip)

    def band(self, st: State, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centre = st["prev"] + st["dmean"]
        scale = np.empty_like(r)
        _scales(st["prev"], st["dmad"], scale)
        return centre - r * scale, centre + r * scale


@kernel
def _scale(prev: float, dmad: float) -> float:
    return float(MAD_TO_SD * dmad + 1e-9 * (np.abs(prev) + 1.0))


@kernel
def _scales(prev: np.ndarray, dmad: np.ndarray, out: np.ndarray) -> None:
    for i in range(len(out)):
        out[i] = _scale(prev[i], dmad[i])


@kernel
def _raw(
    n: np.ndarray,
    prev: np.ndarray,
    dmad: np.ndarray,
    expected: np.ndarray,
    x: np.ndarray,
    out: np.ndarray,
) -> None:
    for i in range(len(x)):
        if n[i] >= 10:
            out[i] = np.abs(x[i] - expected[i]) / _scale(prev[i], dmad[i])
        else:
            out[i] = np.nan


@kernel
def _learn(
    n: np.ndarray,
    prev: np.ndarray,
    dmean: np.ndarray,
    dmad: np.ndarray,
    x: np.ndarray,
    mask: np.ndarray,
    span: float,
    clip: float,
) -> None:
    for i in range(len(x)):
        if not mask[i] or np.isnan(x[i]):
            continue
        if not np.isnan(prev[i]):  # a difference needs a previous value
            count = n[i] + 1.0
            a = np.maximum(1.0 / np.maximum(count, 1.0), 1.0 / span)
            # the scale's floor from the smaller of the two values: after a glitch of 1e15 the
            # step back must not be winsorised at a scale of 1e15 * 1e-9
            small = np.minimum(np.abs(prev[i]), np.abs(x[i]))
            limit = clip * _scale(small, dmad[i]) if n[i] >= 10 else np.inf
            d = np.minimum(np.maximum(x[i] - prev[i] - dmean[i], -limit), limit)
            dmean[i] += a * d
            dmad[i] += a * (np.abs(d) - dmad[i])
            n[i] = count
        prev[i] = x[i]
