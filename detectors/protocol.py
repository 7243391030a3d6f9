"""The one role every univariate detector plays, on arrays of many series at once.

A detector is stateless code plus a `State` of arrays (one row per series). Each time step it
gets one value per series (`x`, NaN = no value this step) and their timestamps (`t`, epoch
seconds), and in two phases

1. `raw(state, x, t)` -> a non-negative statistic per series (bigger = stranger, NaN = cannot
   say) and the value it expected; no state change, so fusion can decide about learning;
2. `learn(state, x, t, mask)` -> updates the rows where `mask` holds (the learning gate).

`band(state, r, t)` turns a raw threshold back into value units: the range of values whose raw
statistic stays below `r` at times `t`. Calibration to [0, 1] is done outside, the same way for
all detectors.

What a detector can do beyond that is declared, never guessed from its kind or class: every
detector has each capability below as a class attribute (`CAPABILITIES`; a detector inherits a
plain one's from `Capabilities` and states what differs; the type checker holds every detector to
the protocol, `detectors.checks` checks the values), and the `Scorer` reads only these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Protocol

import numpy as np

from detectors.calibration import Calibration
from detectors.state import Init, State


@dataclass(frozen=True, slots=True)
class Raw:
    """What a detector says about one time step: statistic and expected value per series."""

    stat: np.ndarray
    expected: np.ndarray
    learn_stat: np.ndarray | None = None
    """What the calibration learns from this step (default `stat`; NaN = nothing). A detector
    whose statistic grows during an anomaly (a stuck run) learns only completed episodes."""

    @property
    def calibration_input(self) -> np.ndarray:
        return self.stat if self.learn_stat is None else self.learn_stat


class Period(NamedTuple):
    """A signal's rhythm as a detector that describes rhythms found it."""

    length: float
    unit: str
    """`seconds` (a calendar period) or `samples` (a rhythm counted in values)."""


class Detector(Protocol):
    """Role of a univariate detector (see module docstring)."""

    kind: ClassVar[str]
    state_version: ClassVar[int]
    rarity: ClassVar[bool]
    """It weighs the other detectors' p instead of being one more test (the `Rarity` role); a
    suite takes at most one."""
    late_start: ClassVar[bool]
    """Its own warm-up gives no verdict instead of holding the whole source in warm-up."""
    explains: ClassVar[tuple[str, ...]]
    """Kinds whose verdicts it sets aside where it judges; where it judges, its expected value
    and band also describe the signal."""
    describes_band: ClassVar[bool]
    """Its expected value and band are the signal's in score messages (the first such detector
    of a suite; without one, the suite's first detector)."""
    describes_rhythm: ClassVar[bool]
    """It tells each series' rhythm (the `Rhythm` role): score messages carry it."""
    switch_explains: ClassVar[bool]
    """A switch between a source's known operating modes can explain its verdict (a jump, a
    level): such a verdict raises no event (`detectors.modes`). False for what no switch
    explains (a frozen value sits in its mode and is still broken)."""

    @property
    def signals(self) -> tuple[str, ...]:
        """Signal-name patterns it runs on (`!pattern` excludes, `("*",)`: every signal)."""
        ...

    @property
    def fields(self) -> dict[str, Init]:
        """State field names and their initial values (`(value, width)`: a row of numbers)."""
        ...

    def new_state(self, n: int) -> State:
        """Initial state of `n` series."""
        ...

    @property
    def calibration(self) -> Calibration:
        """How its raw statistic is calibrated (tail-scale floor in its own units)."""
        ...

    def raw(self, st: State, x: np.ndarray, t: np.ndarray) -> Raw: ...

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None: ...

    def band(self, st: State, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class Rarity(Detector, Protocol):
    """Role of a detector that weighs the others instead of testing (see `detectors.fusion`):
    its statistic is 1 for a value it finds new, 0 otherwise, and it learns from the signal's
    p how often new values come with a p of each decade (declares `rarity = True`)."""

    def weights(self, st: State, out: np.ndarray | None = None) -> np.ndarray:
        """q per series and decade of p (series x decades)."""
        ...

    def observe(self, st: State, new: np.ndarray, p: np.ndarray, mask: np.ndarray) -> None:
        """Count the values under the decade of their signal's p, and how many were new
        (`new`: its own statistic for them)."""
        ...


class Rhythm(Detector, Protocol):
    """Role of a detector that finds each series' rhythm (declares `describes_rhythm = True`)."""

    rhythm_fields: ClassVar[tuple[str, ...]]
    """The state fields `rhythm` reads, and only those: the step loop re-reads a series' rhythm
    at the steps that changed one of them (a score message carries the rhythm at its record)."""

    def rhythm(self, st: State) -> list[Period | None]:
        """Each series' confirmed rhythm, None where it has none (`st` may hold the
        `rhythm_fields` alone)."""
        ...


class Capabilities:
    """The capabilities of a plain detector: one more test on every signal, warm-up like the
    rest, describing nothing. A detector inherits these and states only what differs."""

    __slots__ = ()
    rarity: ClassVar[bool] = False
    late_start: ClassVar[bool] = False
    explains: ClassVar[tuple[str, ...]] = ()
    describes_band: ClassVar[bool] = False
    describes_rhythm: ClassVar[bool] = False
    switch_explains: ClassVar[bool] = True
    signals: ClassVar[tuple[str, ...]] = ("*",)


CAPABILITIES: dict[str, type] = {
    "rarity": bool,
    "late_start": bool,
    "explains": tuple,
    "describes_band": bool,
    "describes_rhythm": bool,
    "switch_explains": bool,
    "signals": tuple,
}
"""What every detector declares beyond its role, and the type of each."""


def updated(old: np.ndarray, new: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`new` where the learning mask holds, else `old` (NaN-safe: masked rows never see NaN)."""
    return np.where(mask, new, old)
