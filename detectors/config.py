"""What users tune about scoring and the suite: two frozen settings objects, passed down.

Kept apart from the code they steer so that the stream's settings, offline scoring, training and
the benchmarks build them without importing the scoring stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from detectors.clock import LocalClock

TARGET_FAP = 1e-3
"""False alarms per record the threshold is set for, wherever nobody chose: stream, training."""


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    """The knobs of scoring; the threshold follows from `target_fap` alone."""

    target_fap: float = TARGET_FAP
    warmup: int = 200
    learn_gate: bool = False
    realert_after: int = 100
    """An anomalous record raises an event (an alert) when its p is `ESCALATION` times smaller
    than the source's last escalated record's, or that was more than this many records ago."""
    known_factor: float = 10.0
    """Alerts ask this many times more evidence of a record whose values all lie where their
    signals have been before (see `detectors.novelty`): recurring behaviour pages nobody at
    the first odd value. The record's score and `is_anomaly` are not affected."""
    episode_gap: int = 3
    """Normal records in a row an anomaly episode stays open over (`detectors.episodes`)."""

    @property
    def threshold(self) -> float:
        return 1.0 - self.target_fap


@dataclass(frozen=True, slots=True)
class SuiteOptions:
    """What users tune without code (settings `ANOMSTREAM_TIMEZONE`, `_SEASONAL_*`)."""

    clock: LocalClock = field(default_factory=LocalClock)
    periods: tuple[str, ...] = ("day", "week", "samples")
    """Period candidates; empty = no seasonal detector."""
    bins: int = 48
    signals: tuple[str, ...] = ("*",)
