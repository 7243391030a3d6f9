"""Stuck: a sensor repeating the same value for longer than this signal usually does.

The statistic is the current run of identical values; calibration learns, from runs that ended,
what run lengths are normal for the signal, with a tail-scale floor of two repeats so one chance
repeat of a noisy signal is not an alarm. Signals that often repeat a value (quantised readings,
counts that idle at zero) are not judged at all: on NAB their flat stretches were never the
anomaly, and they outscored every real one.

>>> import numpy as np
>>> det = Stuck()
>>> st = det.new_state(1)
>>> for v in [*np.random.default_rng(0).normal(0.0, 1.0, 500), 2.0, 2.0, 2.0]:
...     det.learn(st, np.array([v]), np.zeros(1), np.ones(1, bool))
>>> float(det.raw(st, np.array([2.0]), np.zeros(1)).stat[0])  # the 4th 2.0 in a row
3.0
>>> bool(Stuck().raw(det.new_state(1), np.array([2.0]), np.zeros(1)).stat[0] >= 0)  # no history
False
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
class Stuck(Capabilities):
    kind: ClassVar[str] = "stuck"
    state_version: ClassVar[int] = 2
    switch_explains: ClassVar[bool] = False
    fields: ClassVar[dict[str, Init]] = {"n": 0.0, "prev": np.nan, "run": 0.0, "rep": 0.0}

    max_repeat_rate: float = 0.01
    """Signals that repeat their last value more often than this (quantised, counts, idle
    zeros) are not judged: a flat stretch is ordinary for them, and NAB measured it as noise."""
    span: int = 1000
    calibration: Calibration = field(default_factory=lambda: Calibration(min_scale=2.0))

    def new_state(self, n: int) -> State:
        return new_state(self.fields, n)

    def raw(self, st: State, x: np.ndarray, t: np.ndarray) -> Raw:
        stat, ended = np.empty_like(x), np.empty_like(x)
        _raw(st["prev"], st["run"], st["rep"], x, self.max_repeat_rate, stat, ended)
        return Raw(stat, st["prev"].copy(), learn_stat=ended)

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        _learn(st["n"], st["prev"], st["run"], st["rep"], x, mask, float(self.span))

    def band(self, st: State, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A stuck sensor has no value band: any value is fine as long as it moves."""
        return np.full_like(r, -np.inf), np.full_like(r, np.inf)


@kernel
def _raw(
    prev: np.ndarray,
    run: np.ndarray,
    rep: np.ndarray,
    x: np.ndarray,
    max_repeat_rate: float,
    stat: np.ndarray,
    ended: np.ndarray,
) -> None:
    for i in range(len(x)):
        unknown = np.isnan(prev[i]) or np.isnan(x[i])
        same = x[i] == prev[i]
        judged = not unknown and rep[i] <= max_repeat_rate
        stat[i] = (run[i] + 1.0 if same else 0.0) if judged else np.nan
        # Calibration learns the length of runs that ended, never a run still growing: a
        # sensor stuck for an hour must not teach that hour-long runs are normal.
        ended[i] = np.nan if unknown or same else run[i]


@kernel
def _learn(
    n: np.ndarray,
    prev: np.ndarray,
    run: np.ndarray,
    rep: np.ndarray,
    x: np.ndarray,
    mask: np.ndarray,
    span: float,
) -> None:
    for i in range(len(x)):
        if not mask[i] or np.isnan(x[i]):
            continue
        same = x[i] == prev[i]
        # Only the first repeats of a run count towards the repeat rate: a long stuck run must
        # not teach the detector that the signal is one that repeats.
        if not np.isnan(prev[i]) and run[i] < 3:
            gain = np.maximum(1.0 / (n[i] + 1.0), 1.0 / span)
            rep[i] += gain * ((1.0 if same else 0.0) - rep[i])
        run[i] = run[i] + 1.0 if same else 0.0
        prev[i] = x[i]
        n[i] += 1.0
