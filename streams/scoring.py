"""The scorer the settings describe: one place, so the worker and `warmup` score alike."""

from __future__ import annotations

from detectors.engine import Scorer
from detectors.models import ModelBook
from detectors.registry import default_suite
from streams.settings import Settings


def build_scorer(settings: Settings, models: ModelBook | None = None) -> Scorer:
    """The worker's scorer: suite, seasonal options and thresholds from `settings`."""
    return Scorer(settings.scoring.config(), default_suite(settings.seasonal.options()), models)
