"""The scorer the settings describe: one place, so the worker and `warmup` score alike."""

from __future__ import annotations

from detectors.engine import Scorer
from detectors.models import ModelBook
from detectors.registry import default_suite
from detectors.rules import RuleBook
from streams.settings import Settings


def build_scorer(settings: Settings, models: ModelBook | None = None) -> Scorer:
    """The worker's scorer: suite, seasonal options, thresholds and rules from `settings`
    (a rules file that does not parse raises `RuleError`: start-up stops)."""
    rules_file = settings.serving.rules_file
    rules = None
    if rules_file is not None:
        rules = RuleBook.from_file(rules_file, settings.seasonal.options().clock)
    return Scorer(
        settings.scoring.config(), default_suite(settings.seasonal.options()), models, rules
    )
