"""`detectors.checks` catches broken detectors: each check fails on a detector made to break it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest

from detectors.calibration import Calibration
from detectors.checks import (
    CheckFailed,
    check_batch_equals_single,
    check_capabilities,
    check_detector,
    check_masked_rows_do_not_learn,
)
from detectors.persist import Persist
from detectors.protocol import Raw
from detectors.state import Init, State


@dataclass(frozen=True, slots=True)
class InfiniteState(Persist):
    """Its variance becomes infinite: JSON has no Infinity, so no snapshot can hold it."""

    kind: ClassVar[str] = "infinite_state"

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        Persist.learn(self, st, x, t, mask)
        st["var"][mask] = np.inf


class Undeclared:
    """Persist's arithmetic without the capabilities every detector declares."""

    kind = "undeclared"
    state_version = 1

    def __init__(self) -> None:
        self._inner = Persist()
        self.fields: dict[str, Init] = dict(self._inner.fields)
        self.calibration: Calibration = self._inner.calibration

    def new_state(self, n: int) -> State:
        return self._inner.new_state(n)

    def raw(self, st: State, x: np.ndarray, t: np.ndarray) -> Raw:
        return self._inner.raw(st, x, t)

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        self._inner.learn(st, x, t, mask)

    def band(self, st: State, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._inner.band(st, r, t)


@dataclass(frozen=True, slots=True)
class MistypedCapability(Persist):
    late_start: ClassVar[Any] = "yes"


@dataclass(frozen=True, slots=True)
class LooksAtItsNeighbours(Persist):
    """Its statistic depends on the other series of the batch."""

    def raw(self, st: State, x: np.ndarray, t: np.ndarray) -> Raw:
        raw = Persist.raw(self, st, x, t)
        return Raw(raw.stat * (1.0 + 1e-3 * float(np.nansum(np.abs(x)))), raw.expected)


@dataclass(frozen=True, slots=True)
class LearnsEverything(Persist):
    """Ignores the learning gate."""

    def learn(self, st: State, x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        Persist.learn(self, st, x, t, np.ones_like(mask))


def test_a_registered_detector_passes() -> None:
    check_detector(Persist)


def test_a_state_that_is_not_json_safe_fails() -> None:
    with pytest.raises(CheckFailed, match=r"infinite_state: .*infinite"):
        check_detector(InfiniteState)


def test_a_missing_capability_fails() -> None:
    with pytest.raises(CheckFailed, match=r"undeclared: check_capabilities: .*'rarity'"):
        check_detector(Undeclared)  # type: ignore[arg-type]


def test_a_capability_of_the_wrong_type_fails() -> None:
    with pytest.raises(CheckFailed, match="'late_start' must be a bool"):
        check_detector(MistypedCapability(), checks=[check_capabilities])


def test_a_detector_that_looks_at_other_series_fails() -> None:
    with pytest.raises(CheckFailed, match="alone than in a batch"):
        check_detector(LooksAtItsNeighbours(), checks=[check_batch_equals_single])


def test_a_detector_that_ignores_the_learning_gate_fails() -> None:
    with pytest.raises(CheckFailed, match="learnt"):
        check_detector(LearnsEverything(), checks=[check_masked_rows_do_not_learn])
