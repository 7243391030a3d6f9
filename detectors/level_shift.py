"""Level shift: the recent level (fast average) has moved away from the longer-run level.

Two exponentially weighted means, a fast one (span `fast`) and a slow one (span `slow`), stand in
for two adjacent windows in O(1) state; their gap in units of the slow standard deviation is the
statistic. It catches steps that persist and slow drifts that a per-value test never sees.
Learning winsorises each value at `clip` slow standard deviations from the slow level, so one
glitch neither drags the levels nor inflates the deviation that every later gap is measured in.

>>> import numpy as np
>>> det = LevelShift(fast=5, slow=50)
>>> st = det.new_state(1)
>>> rng = np.random.default_rng(0)
>>> for v in rng.normal(0, 1, 200):
...     det.learn(st, np.array([v]), np.zeros(1), np.ones(1, bool))
>>> round(float(det.raw(st, np.array([0.0]), np.zeros(1)).stat[0]), 2)  # calm
0.02
>>> for _ in range(10):  # the level moves up by 5 standard deviations
...     det.learn(st, np.array([5.0]), np.zeros(1), np.ones(1, bool))
>>> round(float(det.raw(st, np.array([5.0]), np.zeros(1)).stat[0]), 2)
1.73
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
class LevelShift(Capabilities):
    kind: ClassVar[str] = "level_shift"
    state_version: ClassVar[int] = 1
    fields: ClassVar[dict[str, Init]] = {"n": 0.0, "fast": 0.0, "slow": 0.0, "var": 0.0}

    fast: int = 20
    slow: int = 1000
    clip: float = 6.0
    calibration: Calibration = field(default_factory=lambda: Calibration(min_scale=0.02))

    def new_state(self, n: int) -> State:
        return new_state(self.fields, n)

    def raw(self, st: State, x: np.ndarray, t: np.ndarray) -> Raw:
        stat = np.empty_like(x)
        _raw(st["n"], st["fast"], st["slow"], st["var"], x, float(self.fast), stat)
        return Raw(stat, st["slow"].copy())

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        fields = (st["n"], st["fast"], st["slow"], st["var"])
        _learn(*fields, x, mask, float(self.fast), float(self.slow), self.clip)

    def band(self, st: State, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sd = np.empty_like(r)
        _sds(st["slow"], st["var"], sd)
        return st["slow"] - r * sd, st["slow"] + r * sd


@kernel
def _sd(slow: float, var: float) -> float:
    return float(np.sqrt(var) + 1e-9 * (np.abs(slow) + 1.0))


@kernel
def _sds(slow: np.ndarray, var: np.ndarray, out: np.ndarray) -> None:
    for i in range(len(out)):
        out[i] = _sd(slow[i], var[i])


@kernel
def _fast_after(n: float, fast: float, x: float, span: float) -> float:
    """The fast average once it has taken `x` in."""
    a = np.maximum(1.0 / (n + 1.0), 1.0 / span)
    return float(fast + a * (x - fast))


@kernel
def _raw(
    n: np.ndarray,
    fast: np.ndarray,
    slow: np.ndarray,
    var: np.ndarray,
    x: np.ndarray,
    span: float,
    out: np.ndarray,
) -> None:
    for i in range(len(x)):
        if n[i] >= 10:
            moved = _fast_after(n[i], fast[i], x[i], span)
            out[i] = np.abs(moved - slow[i]) / _sd(slow[i], var[i])
        else:
            out[i] = np.nan


@kernel
def _learn(
    n: np.ndarray,
    fast: np.ndarray,
    slow: np.ndarray,
    var: np.ndarray,
    x: np.ndarray,
    mask: np.ndarray,
    fast_span: float,
    slow_span: float,
    clip: float,
) -> None:
    for i in range(len(x)):
        if not mask[i] or np.isnan(x[i]):
            continue
        limit = clip * _sd(slow[i], var[i]) if n[i] >= 10 else np.inf
        v = np.minimum(np.maximum(x[i], slow[i] - limit), slow[i] + limit)
        fast[i] = _fast_after(n[i], fast[i], v, fast_span)
        count = n[i] + 1.0
        a = np.maximum(1.0 / np.maximum(count, 1.0), 1.0 / slow_span)
        delta = v - slow[i]
        slow[i] += a * delta
        var[i] = (1.0 - a) * (var[i] + a * delta * delta)
        n[i] = count
