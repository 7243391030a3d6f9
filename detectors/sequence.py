"""Sequence: a value that does not usually follow the values just before it.

The other detectors ask how far a value is from a level; this one asks whether the path is
familiar, as contextual detectors such as CAD OSE and HTM do on NAB. Each value is coded as one
of `bins` equal bins of the signal's range, and the detector counts which bin follows each
context of the `order` bins before it. Its statistic is the surprisal of the new bin after its
context, -log P(bin | context), with a `prior` count per bin so a young context is not certain.

- The range is the signal's extremes, which forget towards its level at rate `forget` per value:
  an old outlier does not stretch the bins forever, and a value beyond the range takes the edge
  bin until it is learnt. The range and level learn each value winsorised at `reach` ranges
  beyond the range: one glitch (1e15) would otherwise put every later value in one bin for
  tens of thousands of values (winsorised, about 5,000), while a signal that really moves
  widens the range step by step (a smaller reach found fewer NAB anomalies: docs/benchmarks.md).
- Counts fade with a memory of `memory` values, kept in O(1) per value: new counts weigh more
  and more (`w`) instead of every old count shrinking, and all are rescaled now and then.

State: bins^(order+1) counts per series (216 for the defaults); a context's total is the sum of
its row. 6 bins and contexts of 2 were chosen on NAB over 5 or 8 bins and contexts of 1 or 3
(docs/benchmarks.md).

>>> import numpy as np
>>> det = Sequence()
>>> st = det.new_state(1)
>>> for v in [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] * 100:  # a sawtooth
...     det.learn(st, np.array([v]), np.zeros(1), np.ones(1, bool))
>>> raw = det.raw(st, np.array([1.0]), np.zeros(1))  # after ... 4, 5 comes 0, not 1
>>> bool(raw.stat[0] > 4), round(float(raw.expected[0]), 1)  # expected: the middle of bin 0
(True, 0.4)
>>> bool(det.raw(st, np.array([0.0]), np.zeros(1)).stat[0] < 0.1)
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

MIN_VALUES = 10
"""Values seen before the first bin is coded (the range needs a few values to mean anything)."""
RESCALE = 1e100
"""Weight of a new count at which all counts are divided back down (float64 has room to 1e308)."""


@dataclass(frozen=True, slots=True)
class Sequence(Capabilities):
    kind: ClassVar[str] = "sequence"
    state_version: ClassVar[int] = 1

    bins: int = 6
    order: int = 2
    prior: float = 0.5
    forget: float = 1e-3
    memory: int = 5000
    reach: float = 100.0
    calibration: Calibration = field(default_factory=lambda: Calibration(min_scale=0.1))

    def __post_init__(self) -> None:
        """Settings the loops cannot run with fail here, not as NaN or an overflow later."""
        if self.bins < 2 or self.order < 1:
            raise ValueError(
                f"sequence needs bins >= 2 and order >= 1, not {self.bins}, {self.order}"
            )
        if self.memory < 2 or self.prior <= 0 or not 0 <= self.forget < 1 or self.reach <= 0:
            raise ValueError("sequence needs memory >= 2, prior > 0, 0 <= forget < 1 and reach > 0")

    @property
    def fields(self) -> dict[str, Init]:
        return {
            "n": 0.0,
            "level": 0.0,
            "lo": np.nan,
            "hi": np.nan,
            "ctx": 0.0,
            "w": 1.0,
            "pair": (0.0, self.bins ** (self.order + 1)),
        }

    def new_state(self, n: int) -> State:
        return new_state(self.fields, n)

    def raw(self, st: State, x: np.ndarray, t: np.ndarray) -> Raw:
        stat, expected = np.empty_like(x), np.empty_like(x)
        fields = (st["n"], st["lo"], st["hi"], st["ctx"], st["w"], st["pair"])
        _raw(*fields, x, self.bins, self.order, self.prior, stat, expected)
        return Raw(stat, expected)

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        fields = (st["n"], st["level"], st["lo"], st["hi"], st["ctx"], st["w"], st["pair"])
        params = (self.bins, self.order, self.forget, 1.0 / self.memory, self.reach)
        _learn(*fields, x, mask, *params)

    def band(self, st: State, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A path has no value band of its own: any value is fine where it usually comes."""
        return np.full_like(r, -np.inf), np.full_like(r, np.inf)


@kernel
def _bin(x: float, lo: float, hi: float, bins: int) -> int:
    """The bin of `x` in [lo, hi]; the edge bins beyond (and bin 0 for a flat range)."""
    frac = (x - lo) / (hi - lo) if hi > lo else 0.0
    if not frac > 0.0:  # also NaN, from infinite values
        return 0
    return int(min(np.floor(frac * bins), bins - 1.0))


@kernel
def _raw(
    n: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    ctx: np.ndarray,
    w: np.ndarray,
    pair: np.ndarray,
    x: np.ndarray,
    bins: int,
    order: int,
    prior: float,
    stat: np.ndarray,
    expected: np.ndarray,
) -> None:
    for i in range(len(x)):
        stat[i] = np.nan
        expected[i] = np.nan
        if n[i] < MIN_VALUES + order:
            continue
        c = int(ctx[i])
        seen = 0.0
        for b in range(bins):
            seen += pair[i, c * bins + b]
        total = seen / w[i] + prior * bins
        if seen > 0:  # the commonest bin after this context, as a value
            best = 0
            for b in range(1, bins):
                if pair[i, c * bins + b] > pair[i, c * bins + best]:
                    best = b
            expected[i] = lo[i] + (best + 0.5) * (hi[i] - lo[i]) / bins
        if not np.isnan(x[i]):
            b = _bin(x[i], lo[i], hi[i], bins)
            stat[i] = -np.log((pair[i, c * bins + b] / w[i] + prior) / total)


@kernel
def _learn(
    n: np.ndarray,
    level: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    ctx: np.ndarray,
    w: np.ndarray,
    pair: np.ndarray,
    x: np.ndarray,
    mask: np.ndarray,
    bins: int,
    order: int,
    forget: float,
    fade: float,
    reach: float,
) -> None:
    contexts = bins**order
    for i in range(len(x)):
        if not mask[i] or np.isnan(x[i]):
            continue
        if n[i] >= MIN_VALUES:
            b = _bin(x[i], lo[i], hi[i], bins)
            c = int(ctx[i])
            if n[i] >= MIN_VALUES + order:  # the context holds `order` coded values
                w[i] /= 1.0 - fade
                pair[i, c * bins + b] += w[i]
                if w[i] > RESCALE:
                    pair[i] /= w[i]
                    w[i] = 1.0
            ctx[i] = float((c * bins + b) % contexts)
        count = n[i] + 1.0
        v = x[i]
        if n[i] >= MIN_VALUES:  # winsorised: one glitch must not stretch the range
            room = reach * max(hi[i] - lo[i], 1e-9 * (abs(level[i]) + 1.0))
            v = min(max(v, lo[i] - room), hi[i] + room)
        level[i] += max(1.0 / count, forget) * (v - level[i])
        if count == 1.0:
            lo[i], hi[i] = v, v
        else:
            lo[i] = min(lo[i] + (level[i] - lo[i]) * forget, v)
            hi[i] = max(hi[i] - (hi[i] - level[i]) * forget, v)
        n[i] = count
