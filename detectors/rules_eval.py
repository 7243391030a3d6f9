"""What a compiled rule runs on: a micro-batch's columns (`Inputs`), the vectorised operations
of the grammar, and the three-valued logic of its conditions.

A number is a constant or an (n,) float64 column, NaN where unknown: a missing signal, or an
operation without a finite result (x/0, x%0, log of 0 or below, sqrt below 0, a power that
overflows or has no real value), which `defined` turns into NaN. A condition is two masks,
(known-true, known-false); a comparison with a NaN side is neither. `and`/`or`/`not` are Kleene's
(SQL's): `false and unknown` is false, `true or unknown` is true, anything else with an unknown
side is unknown. A rule fails where its condition is known-false; it is unknown where neither.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.clock import LocalClock

UTC = LocalClock()


class Inputs:
    """A micro-batch as rules read it: signal name -> (n,) float64 column (NaN = missing) and the
    records' epoch seconds. `hour`/`dow` are computed once per batch, on `clock` (UTC unless the
    deployment keeps local time)."""

    __slots__ = ("_cache", "clock", "n", "signals", "ts")

    def __init__(
        self, signals: Mapping[str, np.ndarray], ts: np.ndarray, clock: LocalClock = UTC
    ) -> None:
        self.signals = signals
        self.ts = np.asarray(ts, dtype=np.float64)
        self.n = len(self.ts)
        self.clock = clock
        self._cache: dict[str, np.ndarray] = {}

    def signal(self, name: str) -> np.ndarray:
        col = self.signals.get(name)
        if col is None:  # absent from every record of the batch: missing
            col = self._cache.get("")
            if col is None:
                col = self._cache[""] = np.full(self.n, np.nan)
            return col
        col = np.asarray(col, dtype=np.float64)
        if col.shape != (self.n,):
            raise ValueError(f"signal {name!r} has shape {col.shape}, the batch {self.n} records")
        return col

    def field(self, name: str) -> np.ndarray:
        col = self._cache.get(name)
        if col is None:
            col = self._cache[name] = FIELDS[name](self.clock.local(self.ts))
        return col


FIELDS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "hour": lambda t: np.floor(t / 3600.0) % 24.0,
    "dow": lambda t: (np.floor(t / 86400.0) + 3.0) % 7.0,  # 1970-01-01 was a Thursday; Monday = 0
}
"""Record fields a rule may name: hour of day (0-23) and day of week (Monday 0 - Sunday 6)."""


def defined(r: np.ndarray) -> np.ndarray:
    """Results that are not finite numbers (x/0, log 0, overflow...) become NaN: unknown."""
    bad = ~np.isfinite(r)
    if bad.any():
        r = np.where(bad, np.nan, r)
    return r


def divide(a: Any, b: Any) -> np.ndarray:
    return defined(np.true_divide(a, b))


def remainder(a: Any, b: Any) -> np.ndarray:
    return defined(np.remainder(a, b))  # the sign of the divisor, as Python's %


def power(a: Any, b: Any) -> np.ndarray:
    return defined(np.power(a, b))  # a negative base to a fractional power is NaN


def sqrt(a: Any) -> np.ndarray:
    out: np.ndarray = np.sqrt(a)  # NaN below 0
    return out


def log(a: Any) -> np.ndarray:
    return defined(np.log(a))  # natural; NaN at 0 and below


FUNCTIONS: dict[str, tuple[int, int | None, Callable[..., np.ndarray]]] = {
    "abs": (1, 1, np.abs),
    "sqrt": (1, 1, sqrt),
    "log": (1, 1, log),
    "min": (2, None, np.minimum),
    "max": (2, None, np.maximum),
}
"""name -> (fewest arguments, most or None, vectorised function); NaN in gives NaN out."""


Column = Callable[[Inputs], np.ndarray]
Num = float | Column
"""A number: a constant (folded at compile time) or a column of the batch."""
Cond = Callable[[Inputs], tuple[Any, Any]]
"""A condition: (known-true, known-false) masks."""


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled rule expression and what it reads."""

    text: str
    signals: frozenset[str]
    fields: frozenset[str]
    test: Cond = field(repr=False, compare=False)

    def outcome(self, inputs: Inputs) -> tuple[np.ndarray, np.ndarray]:
        """(failed, unknown) per record; call inside `np.errstate(all="ignore")`."""
        true, false = self.test(inputs)
        return false, ~(true | false)

    def evaluate(self, inputs: Inputs) -> tuple[np.ndarray, np.ndarray]:
        """(failed, unknown) per record: false where known, and neither true nor false."""
        with np.errstate(all="ignore"):
            return self.outcome(inputs)


def value(num: Num, inp: Inputs) -> Any:
    return num if isinstance(num, float) else num(inp)


Pair = Callable[[Any, Any], tuple[Any, Any]]
"""One comparison of two evaluated sides, as (known-true, known-false)."""


def ordering(yes: Any, no: Any) -> Pair:
    """<, <=, >, >= by their ufunc and its negation: both are false on a NaN side."""
    return lambda x, y: (yes(x, y), no(x, y))


def equality(equal: bool, columns: tuple[bool, bool]) -> Pair:
    """== (or != when not `equal`); `columns` says which sides may hold NaN (not constants)."""
    left, right = columns

    def eq(x: Any, y: Any) -> tuple[Any, Any]:
        same = np.equal(x, y)
        unknown: Any = False
        if left:
            unknown = np.isnan(x)
        if right:
            unknown = unknown | np.isnan(y)
        other = ~(same | unknown)
        return (same, other) if equal else (other, same)

    return eq


def all_of(parts: list[Cond]) -> Cond:
    def both(inp: Inputs) -> tuple[Any, Any]:
        true, false = parts[0](inp)
        for part in parts[1:]:
            t, f = part(inp)
            true, false = true & t, false | f
        return true, false

    return both


def any_of(parts: list[Cond]) -> Cond:
    def either(inp: Inputs) -> tuple[Any, Any]:
        true, false = parts[0](inp)
        for part in parts[1:]:
            t, f = part(inp)
            true, false = true | t, false & f
        return true, false

    return either
