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
from detectors.protocol import Raw
from detectors.state import Init, State, new_state


@dataclass(frozen=True, slots=True)
class Persist:
    kind: ClassVar[str] = "persist"
    state_version: ClassVar[int] = 1
    fields: ClassVar[dict[str, Init]] = {"n": 0.0, "mean": 0.0, "var": 0.0}

    span: int = 200
    clip: float = 6.0
    calibration: Calibration = field(default_factory=lambda: Calibration(min_scale=0.05))

    def new_state(self, n: int) -> State:
        return new_state(self.fields, n)

    def _sd(self, st: State) -> np.ndarray:
        return np.sqrt(st["var"]) + 1e-9 * (np.abs(st["mean"]) + 1.0)

    def raw(self, st: State, x: np.ndarray, t: np.ndarray) -> Raw:
        with np.errstate(invalid="ignore"):
            stat = np.abs(x - st["mean"]) / self._sd(st)
        return Raw(np.where(st["n"] >= 10, stat, np.nan), st["mean"].copy())

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        m = mask & ~np.isnan(x)
        n = st["n"] + m
        a = np.where(m, np.maximum(1.0 / np.maximum(n, 1.0), 1.0 / self.span), 0.0)
        limit = np.where(st["n"] >= 10, self.clip * self._sd(st), np.inf)
        delta = np.minimum(np.maximum(np.where(m, x - st["mean"], 0.0), -limit), limit)
        st["mean"] += a * delta
        st["var"] = (1.0 - a) * (st["var"] + a * delta * delta)
        st["n"] = n

    def band(self, st: State, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sd = self._sd(st)
        return st["mean"] - r * sd, st["mean"] + r * sd
