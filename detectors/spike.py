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
from detectors.protocol import Raw
from detectors.state import Init, State, new_state

MAD_TO_SD = 1.2533  # mean absolute deviation -> standard deviation for a normal distribution


@dataclass(frozen=True, slots=True)
class Spike:
    kind: ClassVar[str] = "spike"
    state_version: ClassVar[int] = 1
    fields: ClassVar[dict[str, Init]] = {"n": 0.0, "prev": np.nan, "dmean": 0.0, "dmad": 0.0}

    span: int = 200
    clip: float = 6.0
    calibration: Calibration = field(default_factory=lambda: Calibration(min_scale=0.05))

    def new_state(self, n: int) -> State:
        return new_state(self.fields, n)

    def _scale(self, st: State) -> np.ndarray:
        return MAD_TO_SD * st["dmad"] + 1e-9 * (np.abs(st["prev"]) + 1.0)

    def raw(self, st: State, x: np.ndarray, t: np.ndarray) -> Raw:
        expected = st["prev"] + st["dmean"]
        with np.errstate(invalid="ignore"):
            stat = np.abs(x - expected) / self._scale(st)
        return Raw(np.where(st["n"] >= 10, stat, np.nan), expected)

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        m = mask & ~np.isnan(x)
        had_prev = m & ~np.isnan(st["prev"])
        n = st["n"] + had_prev
        a = np.where(had_prev, np.maximum(1.0 / np.maximum(n, 1.0), 1.0 / self.span), 0.0)
        limit = np.where(st["n"] >= 10, self.clip * self._scale(st), np.inf)
        d = np.where(had_prev, x - st["prev"] - st["dmean"], 0.0)
        d = np.minimum(np.maximum(d, -limit), limit)
        st["dmean"] += a * d
        st["dmad"] += a * (np.abs(d) - st["dmad"])
        st["prev"] = np.where(m, x, st["prev"])
        st["n"] = n

    def band(self, st: State, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centre = st["prev"] + st["dmean"]
        scale = self._scale(st)
        return centre - r * scale, centre + r * scale
