"""Persist: how far a value is from the recent level, relative to the usual deviation.

An exponentially weighted mean and variance (span `span`, started as a plain average so the first
values count fully). Learning winsorises the deviation at `clip` standard deviations, so one
outlier does not blow up the scale. Its band (mean +- r sd) is the signal's band in score messages.

>>> import numpy as np
>>> det = Persist()
>>> st = det.new_state(1)
>>> for v in [10.0, 11.0, 9.0, 10.5, 9.5, 10.0] * 3:
...     det.learn(st, np.array([v]), np.zeros(1), np.ones(1, bool))
>>> bool(det.raw(st, np.array([20.0]), np.zeros(1)).stat[0] > 10)
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


@dataclass(frozen=True, slots=True)
class Persist(Capabilities):
    kind: ClassVar[str] = "persist"
    state_version: ClassVar[int] = 1
    describes_band: ClassVar[bool] = True
    """Its band (mean +- r sd) describes the signal in score messages."""
    fields: ClassVar[dict[str, Init]] = {"n": 0.0, "mean": 0.0, "var": 0.0}

    span: int = 1000
    clip: float = 6.0
    calibration: Calibration = field(default_factory=lambda: Calibration(min_scale=0.05))

    def new_state(self, n: int) -> State:
        return new_state(self.fields, n)

    def raw(self, st: State, x: np.ndarray, t: np.ndarray) -> Raw:
        stat = np.empty_like(x)
        _raw(st["n"], st["mean"], st["var"], x, stat)
        return Raw(stat, st["mean"].copy())

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        _learn(st["n"], st["mean"], st["var"], x, mask, float(self.span), self.clip)

    def band(self, st: State, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lower, upper = np.empty_like(r), np.empty_like(r)
        _band(st["mean"], st["var"], r, lower, upper)
        return lower, upper


@kernel
def _sd(mean: float, var: float) -> float:
    return float(np.sqrt(var) + 1e-9 * (np.abs(mean) + 1.0))


@kernel
def _raw(n: np.ndarray, mean: np.ndarray, var: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    for i in range(len(x)):
        out[i] = np.abs(x[i] - mean[i]) / _sd(mean[i], var[i]) if n[i] >= 10 else np.nan


@kernel
def _band(
    mean: np.ndarray, var: np.ndarray, r: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> None:
    for i in range(len(r)):
        sd = _sd(mean[i], var[i])
        lower[i] = mean[i] - r[i] * sd
        upper[i] = mean[i] + r[i] * sd


@kernel
def _learn(
    n: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    x: np.ndarray,
    mask: np.ndarray,
    span: float,
    clip: float,
) -> None:
    for i in range(len(x)):
        if not mask[i] or np.isnan(x[i]):
            continue
        count = n[i] + 1.0
        a = np.maximum(1.0 / np.maximum(count, 1.0), 1.0 / span)
        limit = clip * _sd(mean[i], var[i]) if n[i] >= 10 else np.inf
        delta = np.minimum(np.maximum(x[i] - mean[i], -limit), limit)
        mean[i] += a * delta
        var[i] = (1.0 - a) * (var[i] + a * delta * delta)
        n[i] = count
