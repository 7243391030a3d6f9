"""Level shift: the recent level (fast average) has moved away from the longer-run level.

Two exponentially weighted means, a fast one (span `fast`) and a slow one (span `slow`), stand in
for two adjacent windows in O(1) state; their gap in units of the slow standard deviation is the
statistic. It catches steps that persist and slow drifts that a per-value test never sees.

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
from detectors.protocol import Raw
from detectors.state import Init, State, new_state


@dataclass(frozen=True, slots=True)
class LevelShift:
    kind: ClassVar[str] = "level_shift"
    state_version: ClassVar[int] = 1
    fields: ClassVar[dict[str, Init]] = {"n": 0.0, "fast": 0.0, "slow": 0.0, "var": 0.0}

    fast: int = 20
    slow: int = 1000
    calibration: Calibration = field(default_factory=lambda: Calibration(min_scale=0.02))

    def new_state(self, n: int) -> State:
        return new_state(self.fields, n)

    def _sd(self, st: State) -> np.ndarray:
        return np.sqrt(st["var"]) + 1e-9 * (np.abs(st["slow"]) + 1.0)

    def _fast_after(self, st: State, x: np.ndarray) -> np.ndarray:
        a = np.maximum(1.0 / (st["n"] + 1.0), 1.0 / self.fast)
        fast: np.ndarray = st["fast"] + a * (x - st["fast"])
        return fast

    def raw(self, st: State, x: np.ndarray, t: np.ndarray) -> Raw:
        with np.errstate(invalid="ignore"):
            stat = np.abs(self._fast_after(st, x) - st["slow"]) / self._sd(st)
        return Raw(np.where(st["n"] >= 10, stat, np.nan), st["slow"].copy())

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        m = mask & ~np.isnan(x)
        xs = np.where(m, x, 0.0)
        st["fast"] = np.where(m, self._fast_after(st, xs), st["fast"])
        n = st["n"] + m
        a = np.where(m, np.maximum(1.0 / np.maximum(n, 1.0), 1.0 / self.slow), 0.0)
        delta = np.where(m, xs - st["slow"], 0.0)
        st["slow"] += a * delta
        st["var"] = (1.0 - a) * (st["var"] + a * delta * delta)
        st["n"] = n

    def band(self, st: State, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sd = self._sd(st)
        return st["slow"] - r * sd, st["slow"] + r * sd
