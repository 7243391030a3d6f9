"""`build_scorer`: the worker's scorer from the settings, validation rules included."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.rules import RuleError
from streams.scoring import build_scorer
from streams.settings import load_settings


def test_the_rules_file_setting_gives_the_scorer_its_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nname = "hot"\nexpr = "temp < 100"\n')
    settings = load_settings(environ={"ANOMSTREAM_RULES_FILE": str(rules)})
    scorer = build_scorer(settings)
    assert scorer.rules is not None and scorer.rules.names == ("hot",)
    assert build_scorer(load_settings(environ={})).rules is None


def test_a_rule_that_does_not_parse_stops_start_up_naming_it(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nname = "hot"\nexpr = "temp <"\n')
    settings = load_settings(environ={"ANOMSTREAM_RULES_FILE": str(rules)})
    with pytest.raises(RuleError, match="hot"):
        build_scorer(settings)
