"""The scorer the settings describe: one place, so the worker and `warmup` score alike."""

from __future__ import annotations

from detectors.clock import LocalClock
from detectors.engine import Scorer, ScoringConfig
from detectors.models import ModelBook
from detectors.registry import SuiteOptions, default_suite
from streams.settings import Settings


def scoring_config(settings: Settings) -> ScoringConfig:
    return ScoringConfig(
        target_fap=settings.target_fap,
        warmup=settings.warmup,
        learn_gate=settings.learn_gate,
        realert_after=settings.realert_after,
        known_factor=settings.known_factor,
    )


def suite_options(settings: Settings) -> SuiteOptions:
    return SuiteOptions(
        clock=LocalClock(settings.timezone),
        periods=tuple(settings.seasonal_periods),
        bins=settings.seasonal_bins,
        signals=tuple(settings.seasonal_signals),
    )


def build_scorer(settings: Settings, models: ModelBook | None = None) -> Scorer:
    """The worker's scorer: suite, seasonal options and thresholds from `settings`."""
    return Scorer(scoring_config(settings), default_suite(suite_options(settings)), models)
