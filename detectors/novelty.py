"""Novelty: a value where the signal has never been, weighed by how rarely that happens.

The level detectors ask how far a value is from what is usual; this one asks whether the signal
has ever been there. Each signal keeps a coarse map of the values it has taken: a grid of
`levels` cells at most, one bit per cell. The grid's width is a `split`-th of the range of the
signal's first `warm` values, and doubles (two cells merge into one, exactly) whenever the
signal's all-time range would need more cells. A value in a cell the signal never visited is new
(its statistic is 1, else 0). A value `far` grids beyond the range is new but is not learnt
until `hold` such values came in a row: one glitch (1e15) would
otherwise double the grid until every usual value shares one cell, for good, while a signal that
really moved keeps coming back there and is learnt.

New values are rare once a signal has shown its range, and NAB's labelled anomalies are often
new values (HTM and CAD OSE lean on the same evidence). It does not judge alone: it weighs the
other detectors' verdict (`rarity`, see `detectors.fusion`). For a new value, the signal's p
from the other detectors is multiplied by q = P(new | a p of this decade), learnt per signal
from its own values: the share of new values among those whose p fell in the same decade (1 to
0.1, 0.1 to 0.01, ...). So p * q estimates P(p this small and new), and a value that is new
only because it is extreme (a noisy signal's record high, a drift) gains little: at that
decade, new is what extremes usually are. A decade counts `prior` values more, all new, so a
decade with few values gains little and one never seen gives q = 1 (no gain), and no decade's q
is below a milder one's. q is read before learning, so a replay gives the same numbers.

State: seven floats per series (the bit map is one of them: `levels` <= 52 bits fit a float64
exactly) and two counts per decade, about 500 bytes of JSON.

>>> import numpy as np
>>> det = Novelty()
>>> st = det.new_state(1)
>>> for v in np.sin(np.arange(500) / 10.0):  # a signal that stays within [-1, 1]
...     det.learn(st, np.array([v]), np.zeros(1), np.ones(1, bool))
>>> float(det.raw(st, np.array([0.5]), np.zeros(1)).stat[0])  # been there
0.0
>>> float(det.raw(st, np.array([3.0]), np.zeros(1)).stat[0])  # never been there
1.0
>>> det.weights(st)[0, :3].tolist()  # nothing observed yet: no decade knows better than 1
[1.0, 1.0, 1.0]
>>> p = np.array([0.05])  # the other detectors' p for 300 values in decade (0.01, 0.1]
>>> for v in np.linspace(-0.9, 0.9, 297).tolist() + [1.5, 1.7, 1.9]:  # three of them new
...     new = det.raw(st, np.array([v]), np.zeros(1)).stat
...     det.observe(st, new, p, np.ones(1, bool))
...     det.learn(st, np.array([v]), np.zeros(1), np.ones(1, bool))
>>> [round(q, 4) for q in det.weights(st)[0, :3].tolist()]  # (3 + 1) / (300 + 1) in its decade
[1.0, 0.0133, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from detectors.calibration import Calibration
from detectors.fusion import DECADES, decade
from detectors.jit import kernel
from detectors.protocol import Capabilities, Raw
from detectors.state import Init, State, new_state

MAX_LEVELS = 52
"""The bit map lives in one float64, whose integers are exact up to 2**53."""
FLAT_WIDTH = 1e-3
"""Cell width, relative to the value's magnitude (at least 1), of a signal whose first values
were all equal: any move is new until the range has grown and the grid has doubled."""


@dataclass(frozen=True, slots=True)
class Novelty(Capabilities):
    kind: ClassVar[str] = "novelty"
    state_version: ClassVar[int] = 2
    rarity: ClassVar[bool] = True
    """Its statistic weighs the other detectors' verdict instead of being one (see
    `detectors.fusion.fuse_step`): it is not calibrated and never fires alone."""
    fields: ClassVar[dict[str, Init]] = {
        "n": 0.0,  # values learnt
        "lo": np.nan,  # all-time extremes
        "hi": np.nan,
        "origin": 0.0,  # the grid: cell k holds [origin + k * width, origin + (k + 1) * width)
        "width": 0.0,  # 0 until the first `warm` values have set it
        "seen": 0.0,  # bit map of visited cells from the cell of `lo` up, as an exact integer
        "held": 0.0,  # far values in a row not learnt (see `hold`)
        "count": (0.0, DECADES),  # values observed per decade of their p (see `observe`)
        "hits": (0.0, DECADES),  # of which new
    }

    levels: int = 24
    """Most cells the signal's all-time range may span before the grid doubles."""
    warm: int = 150
    """Values whose range sets the first grid."""
    split: float = 7.0
    """Cells across the first values' range."""
    prior: float = 1.0
    """Pseudo-values, all new, in each decade's share: a decade with no values gives q = 1."""
    far: float = 64.0
    """A value is far when it lies beyond the range by more than this many grids (`levels`
    cells each): one that would need the grid to double six times at once."""
    hold: int = 3
    """Far values (beyond the range by more than the grid spans) in a row left unlearnt: a
    glitch is alone, a signal that moved far is learnt at its `hold + 1`-th value there."""
    calibration: Calibration = field(default_factory=lambda: Calibration(min_scale=1.0))

    def __post_init__(self) -> None:
        """Settings the loops cannot run with fail here, not as a wrong bit map later."""
        fits = 2 <= self.levels <= MAX_LEVELS and self.warm >= 1 and self.hold >= 0 and self.far > 0
        if not (fits and min(self.split, self.prior) > 0):
            raise ValueError(
                f"novelty needs 2 <= levels <= {MAX_LEVELS}, warm >= 1, hold >= 0, split > 0"
                ", prior > 0"
            )

    def new_state(self, n: int) -> State:
        return new_state(self.fields, n)

    def raw(self, st: State, x: np.ndarray, t: np.ndarray) -> Raw:
        stat = np.empty_like(x)
        _raw(st["width"], st["origin"], st["lo"], st["seen"], x, self.levels, stat)
        nothing = np.full_like(x, np.nan)  # no expected value; its calibration never learns
        return Raw(stat, nothing, nothing)

    def weights(self, st: State, out: np.ndarray | None = None) -> np.ndarray:
        """q per series and decade of p: the share of new values among the values whose p fell
        in that decade (plus `prior` pseudo-values, all new), never below a milder decade's;
        shape (series, DECADES)."""
        q = np.empty((len(st["n"]), DECADES)) if out is None else out
        _weights(st["count"], st["hits"], self.prior, q)
        return q

    def observe(self, st: State, new: np.ndarray, p: np.ndarray, mask: np.ndarray) -> None:
        """Count each value under the decade of `p`, the signal's p from the other detectors,
        and whether it was new (`new`: what `raw` said, NaN = no map yet, not counted)."""
        _observe(st["count"], st["hits"], new, p, mask)

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        fields = (st["n"], st["lo"], st["hi"], st["origin"], st["width"], st["seen"], st["held"])
        params = (self.levels, float(self.warm), self.split, self.far, float(self.hold))
        _learn(*fields, x, mask, *params)

    def band(self, st: State, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Novelty has no value band: where the signal has been is not one interval."""
        return np.full_like(r, -np.inf), np.full_like(r, np.inf)


@kernel
def _cell(x: float, origin: float, width: float) -> float:
    return float(np.floor((x - origin) / width))


@kernel
def _is_new(x: float, origin: float, width: float, lo: float, seen: float, levels: int) -> bool:
    j = _cell(x, origin, width) - _cell(lo, origin, width)  # bit 0 is the cell of `lo`
    if j < 0 or j >= levels:
        return True
    return (int(seen) >> int(j)) & 1 == 0


@kernel
def _raw(
    width: np.ndarray,
    origin: np.ndarray,
    lo: np.ndarray,
    seen: np.ndarray,
    x: np.ndarray,
    levels: int,
    out: np.ndarray,
) -> None:
    for i in range(len(x)):
        if width[i] <= 0 or not np.isfinite(x[i]):
            out[i] = np.nan
        elif _is_new(x[i], origin[i], width[i], lo[i], seen[i], levels):
            out[i] = 1.0
        else:
            out[i] = 0.0


@kernel
def _weights(count: np.ndarray, hits: np.ndarray, prior: float, q: np.ndarray) -> None:
    for i in range(len(count)):
        milder = 0.0
        for d in range(DECADES):
            share = (hits[i, d] + prior) / (count[i, d] + prior)
            # Never below a milder decade's share: the more extreme a value, the likelier it is
            # new anyway (a young signal exploring its range, a record high).
            q[i, d] = max(share, milder)
            if count[i, d] > 0:
                milder = max(milder, share)


@kernel
def _observe(
    count: np.ndarray, hits: np.ndarray, new: np.ndarray, p: np.ndarray, mask: np.ndarray
) -> None:
    for i in range(len(new)):
        if mask[i] and np.isfinite(new[i]):
            d = decade(p[i])
            count[i, d] += 1.0
            hits[i, d] += new[i]


@kernel
def _learn(
    n: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    origin: np.ndarray,
    width: np.ndarray,
    seen: np.ndarray,
    held: np.ndarray,
    x: np.ndarray,
    mask: np.ndarray,
    levels: int,
    warm: float,
    split: float,
    far: float,
    hold: float,
) -> None:
    full = (1 << levels) - 1
    for i in range(len(x)):
        v = x[i]
        if not mask[i] or not np.isfinite(v):
            continue
        if width[i] > 0:  # far beyond the range: a glitch, unless it keeps coming
            reach = far * levels * width[i]
            if (v > hi[i] + reach or v < lo[i] - reach) and held[i] < hold:
                held[i] += 1.0
                continue
            held[i] = 0.0
        n[i] += 1.0
        if n[i] == 1.0:
            lo[i], hi[i] = v, v
        if width[i] <= 0:
            lo[i] = min(lo[i], v)
            hi[i] = max(hi[i], v)
            if n[i] < warm:
                continue
            # The first grid: the first values' range is visited, every cell of it.
            span = hi[i] - lo[i]
            origin[i] = lo[i]
            width[i] = span / split if span > 0 else max(abs(lo[i]), 1.0) * FLAT_WIDTH
            top = min(_cell(hi[i], origin[i], width[i]), levels - 1.0)
            seen[i] = float((1 << (int(top) + 1)) - 1)
        bits, b = int(seen[i]), int(_cell(lo[i], origin[i], width[i]))  # b: the cell of bit 0
        lo[i] = min(lo[i], v)
        hi[i] = max(hi[i], v)
        # Double the width until the all-time range fits: cell k becomes floor(k / 2), so the
        # map merges exactly (floor(floor(y) / 2) == floor(y / 2)).
        while _cell(hi[i], origin[i], width[i]) - _cell(lo[i], origin[i], width[i]) > levels - 1:
            width[i] *= 2.0
            half = b // 2
            merged = 0
            for j in range(levels):
                if (bits >> j) & 1:
                    merged |= 1 << ((b + j) // 2 - half)
            bits, b = merged, half
        low = int(_cell(lo[i], origin[i], width[i]))
        if low < b:  # a new low: bit 0 moves down with it
            bits <<= b - low
            b = low
        bits |= 1 << (int(_cell(v, origin[i], width[i])) - b)
        seen[i] = float(bits & full)
