"""Every univariate detector by kind, and the suite the stream runs.

The conformance tests run `detectors.checks` over `REGISTRY`, so a detector is tested the moment
it is listed here. `SuiteOptions` lives in `detectors.config` and stays importable from here.
"""

from __future__ import annotations

from collections.abc import Callable

from detectors.config import SuiteOptions
from detectors.level_shift import LevelShift
from detectors.novelty import Novelty
from detectors.persist import Persist
from detectors.protocol import Detector
from detectors.quantile import Iqr, QuantileBand
from detectors.seasonal import Seasonal
from detectors.sequence import Sequence
from detectors.spike import Spike
from detectors.stuck import Stuck

__all__ = ["REGISTRY", "STREAM_KINDS", "SuiteOptions", "default_suite"]

REGISTRY: dict[str, Callable[[], Detector]] = {
    Persist.kind: Persist,
    Spike.kind: Spike,
    Stuck.kind: Stuck,
    LevelShift.kind: LevelShift,
    QuantileBand.kind: QuantileBand,
    Iqr.kind: Iqr,
    Seasonal.kind: Seasonal,
    Sequence.kind: Sequence,
    Novelty.kind: Novelty,
}

STREAM_KINDS = (
    Persist.kind,
    Spike.kind,
    Stuck.kind,
    LevelShift.kind,
    Sequence.kind,
    Seasonal.kind,
    Novelty.kind,
)
"""What the stream runs today. `quantile` and `iqr` are registered but not run: with `novelty`
in the suite they cost NAB points (docs/benchmarks.md) and raise early false alarms on young
series (the demo's)."""


def default_suite(options: SuiteOptions | None = None) -> list[Detector]:
    """The detectors the stream runs on every signal, in a fixed order (state layout)."""
    opts = options or SuiteOptions()
    suite: list[Detector] = []
    for kind in STREAM_KINDS:
        if kind != Seasonal.kind:
            suite.append(REGISTRY[kind]())
        elif opts.periods:
            suite.append(
                Seasonal(
                    clock=opts.clock, periods=opts.periods, bins=opts.bins, signals=opts.signals
                )
            )
    return suite
