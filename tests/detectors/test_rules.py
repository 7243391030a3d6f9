"""Rules from configuration: loading (TOML, JSON, settings), which rules serve which source, and
the verdicts of a micro-batch as the scorer reads them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detectors.clock import LocalClock
from detectors.records import Record
from detectors.rules import RuleBook, RuleError, columns, load_rules, parse_rules

NAN = math.nan


def book(*items: dict[str, Any], clock: LocalClock | None = None) -> RuleBook:
    rules = parse_rules(list(items), "test")
    return RuleBook(rules) if clock is None else RuleBook(rules, clock)


def error(items: Any, origin: str = "rules.toml") -> str:
    with pytest.raises(RuleError) as info:
        parse_rules(items, origin)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{origin}: "), message
    return message


# loading ----------------------------------------------------------------------------------


def test_defaults() -> None:
    (rule,) = parse_rules([{"name": "hot", "expr": "temp < 100"}])
    assert (rule.name, rule.sources, rule.severity) == ("hot", ("*",), "medium")
    assert rule.expr.signals == frozenset({"temp"})


def test_every_key() -> None:
    (rule,) = parse_rules(
        [{"name": "hot", "expr": "t < 1", "sources": ["pump-*", "!pump-9"], "severity": "high"}]
    )
    assert rule.sources == ("pump-*", "!pump-9") and rule.severity == "high"


@pytest.mark.parametrize(
    ("items", "needle"),
    [
        ([{"expr": "t < 1"}], "rule #1 has no name"),
        (
            [{"name": "a", "expr": "t < 1"}, {"name": "a", "expr": "u < 1"}],
            "'a' is defined twice (#1 and #2)",
        ),
        ([{"name": "hot"}], "rule 'hot' has no expr"),
        ([{"name": "hot", "expr": 5}], "rule 'hot': expr must be a string"),
        ([{"name": "hot", "expr": "t < 1", "sourcs": "*"}], "unknown key 'sourcs'"),
        ([{"name": "hot", "expr": "t < 1", "severity": "urgent"}], "severity 'urgent'"),
        ([{"name": "hot", "expr": "t < 1", "sources": ""}], "sources"),
        ([{"name": "hot", "expr": "t < 1", "sources": [1]}], "sources"),
        ([{"name": "two words", "expr": "t < 1"}], "'two words'"),
        ([{"name": 7, "expr": "t < 1"}], "name must be"),
        ([{"name": "hot", "expr": "t.x < 1"}], "rule 'hot': column 1: not allowed: attribute"),
        (["hot"], "rule #1 must be a table"),
        ({"name": "hot"}, "a list of rules"),
    ],
)
def test_loading_errors_are_one_line(items: Any, needle: str) -> None:
    assert needle in error(items)


TOML = """
[[rules]]
name = "temp_too_high"
expr = "temp < 100"
sources = "pump-*"

[[rules]]
name = "pressure_band"
expr = '''
abs(pressure - 3) < 0.5  # bar
  and flow > 0
'''
severity = "high"
"""


def test_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(TOML)
    rules = load_rules(path)
    assert [r.name for r in rules] == ["temp_too_high", "pressure_band"]
    assert rules[1].severity == "high" and rules[0].sources == ("pump-*",)


@pytest.mark.parametrize("wrapped", [True, False])
def test_a_json_file(tmp_path: Path, wrapped: bool) -> None:
    items = [{"name": "hot", "expr": "temp < 100"}]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": items} if wrapped else items))
    assert [r.name for r in load_rules(path)] == ["hot"]


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("rules.toml", "[[rules]\nname = 1", "not valid TOML"),
        ("rules.toml", '[[rule]]\nname = "a"', "unknown key 'rule'"),
        ("rules.json", "[{", "not valid JSON"),
        ("rules.json", '{"rulez": []}', "unknown key 'rulez'"),
        (
            "rules.toml",
            '[[rules]]\nname = "a"\nexpr = "a <"',
            "rules.toml: rule 'a': column 4: syntax",
        ),
    ],
)
def test_bad_files_are_one_line(tmp_path: Path, name: str, text: str, needle: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(RuleError) as info:
        load_rules(path)
    assert needle in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="rules file not found"):
        load_rules(tmp_path / "nope.toml")
    with pytest.raises(RuleError, match="directory"):
        load_rules(tmp_path)


def test_a_file_with_no_rules_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("# nothing yet\n")
    assert load_rules(path) == ()


# which rules serve a source -------------------------------------------------------------


def test_source_patterns() -> None:
    rules = book(
        {"name": "all", "expr": "x < 1"},
        {"name": "pumps", "expr": "x < 2", "sources": "pump-*"},
        {"name": "most_pumps", "expr": "x < 3", "sources": ["pump-*", "!pump-9"]},
    )
    assert [r.name for r in rules.for_source("pump-1")] == ["all", "pumps", "most_pumps"]
    assert [r.name for r in rules.for_source("pump-9")] == ["all", "pumps"]
    assert [r.name for r in rules.for_source("fan-1")] == ["all"]
    assert rules.for_source("pump-1") is rules.for_source("pump-1")  # cached


def test_what_the_book_reads() -> None:
    rules = book({"name": "a", "expr": "x < 1 and hour > 2"}, {"name": "b", "expr": 's("y z") < 1'})
    assert rules.signals == frozenset({"x", "y z"}) and rules.names == ("a", "b")
    assert len(rules) == 2 and bool(RuleBook(())) is False


# verdicts of a batch ----------------------------------------------------------------------


def test_verdicts_per_record_and_rule() -> None:
    rules = book(
        {"name": "hot", "expr": "temp < 100"},
        {"name": "band", "expr": "abs(pressure - 3) < 0.5"},
    )
    signals = {"temp": np.array([50.0, 150, 150, NAN]), "pressure": np.array([3.0, 3, 9, 9])}
    verdicts = rules.evaluate(signals, np.zeros(4), "pump-1")
    assert verdicts.failed.tolist() == [[False, True, True, False], [False, False, True, True]]
    assert verdicts.failures() == [[], ["hot"], ["hot", "band"], ["band"]]
    assert verdicts.unknowns() == [[], [], [], ["hot"]]


def test_a_rule_is_neither_failed_nor_unknown_where_it_does_not_apply() -> None:
    rules = book(
        {"name": "pumps", "expr": "temp < 100", "sources": "pump-*"},
        {"name": "fans", "expr": "rpm > 0", "sources": "fan-*"},
    )
    signals = {"temp": np.array([150.0, 150, NAN])}
    verdicts = rules.evaluate(signals, np.zeros(3), ["pump-1", "fan-1", "pump-2"])
    assert verdicts.failures() == [["pumps"], [], []]
    assert verdicts.unknowns() == [["fans"] * 0, ["fans"], ["pumps"]]
    assert verdicts.applies.tolist() == [[True, False, True], [False, True, False]]


def test_no_rule_for_the_source() -> None:
    verdicts = book({"name": "p", "expr": "x < 1", "sources": "pump-*"}).evaluate(
        {"x": np.array([5.0])}, np.zeros(1), "fan-1"
    )
    assert verdicts.failures() == [[]] and verdicts.unknowns() == [[]]


def test_hour_on_the_books_clock() -> None:
    noon_utc = 1_700_000_000.0 - (1_700_000_000.0 % 86_400) + 12 * 3600.0
    rule = {"name": "not_at_one", "expr": "hour != 13 or x < 1"}
    signals, ts = {"x": np.array([5.0])}, np.array([noon_utc])
    assert book(rule).evaluate(signals, ts, "a").failures() == [[]]
    local = book(rule, clock=LocalClock("Europe/Berlin"))
    assert local.evaluate(signals, ts, "a").failures() == [["not_at_one"]]


def test_records_to_columns() -> None:
    records = [
        Record("a", 0.0, "t0", {"x": 1.0, "y": None}),
        Record("a", 1.0, "t1", {"y": 2.0}),
    ]
    cols = columns(records, ["x", "y", "z"])
    assert np.array_equal(cols["x"], [1.0, NAN], equal_nan=True)
    assert np.array_equal(cols["y"], [NAN, 2.0], equal_nan=True)
    assert np.isnan(cols["z"]).all()


def test_evaluate_records() -> None:
    rules = book({"name": "hot", "expr": "temp < 100", "sources": "pump-*"})
    records = [
        Record("pump-1", 0.0, "t0", {"temp": 150.0}),
        Record("fan-1", 0.0, "t0", {"temp": 150.0}),
        Record("pump-1", 1.0, "t1", {}),
    ]
    verdicts = rules.evaluate_records(records)
    assert verdicts.failures() == [["hot"], [], []]
    assert verdicts.unknowns() == [[], [], ["hot"]]
