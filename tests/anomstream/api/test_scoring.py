"""The API's scoring with validation rules: the same verdicts and events as `detect`."""

from __future__ import annotations

from anomstream.api.scoring import detect
from detectors.config import ScoringConfig
from detectors.records import Record
from detectors.rules import RuleBook, parse_rules


def test_the_servers_rules_fill_check_failures_and_raise_rule_events() -> None:
    book = RuleBook(parse_rules([{"name": "hot", "expr": "temp < 100"}]))
    temps = [50.0, 150.0, 150.0, 50.0]
    records = [Record("p", float(i), f"t{i}", {"temp": t}) for i, t in enumerate(temps)]
    found = detect(records, None, None, ScoringConfig(), rules=book)
    assert [m["check_failures"] for m in found.messages()] == [[], ["hot"], ["hot"], []]
    assert [e["kind"] for e in found.events()] == ["rule"]
    plain = detect(records, None, None, ScoringConfig())
    assert all(not m["check_failures"] for m in plain.messages()) and not plain.events()
