"""Validation rules on the scoring path: `check_failures`, unknowns and rule events."""

from __future__ import annotations

import orjson

from detectors.engine import Scorer, ScoringConfig
from detectors.messages import anomaly_event, rule_event, score_message
from detectors.offline import events, score_records
from detectors.records import Origin, Record
from detectors.rules import RuleBook, parse_rules
from detectors.source_state import SourceState

BOOK = [
    {"name": "hot", "expr": "temp < 100", "severity": "high"},
    {"name": "low_flow", "expr": "flow > 0", "sources": "pump-*"},
]


def scorer() -> Scorer:
    return Scorer(ScoringConfig(warmup=50), rules=RuleBook(parse_rules(BOOK)))


def rec(i: int, temp: float | None, flow: float | None = 1.0, source: str = "pump-1") -> Record:
    return Record(source, 1000.0 + i, f"t{i}", {"temp": temp, "flow": flow}, Origin("s", 0, i))


def test_a_failing_record_lists_the_rule_and_a_missing_signal_is_unknown_not_failed() -> None:
    s = scorer()
    out = score_records(s, [rec(0, 50.0), rec(1, 150.0, 0.0), rec(2, None)])
    assert [r.check_failures for r in out] == [[], ["hot", "low_flow"], []]
    assert [r.check_unknown for r in out] == [[], [], ["hot"]]
    msgs = [score_message(r, s.config) for r in out]
    assert msgs[1]["check_failures"] == ["hot", "low_flow"]
    assert msgs[2]["check_unknown"] == ["hot"] and "check_unknown" not in msgs[0]


def test_rules_serve_only_their_sources() -> None:
    out = score_records(scorer(), [rec(0, 50.0, 0.0, source="fan-1")])
    assert out[0].check_failures == []


def test_a_run_of_failing_records_is_one_event_and_a_new_one_after_it_passed() -> None:
    s = scorer()
    temps = [50.0, 150.0, 160.0, 170.0, 50.0, 150.0]
    out = score_records(s, [rec(i, t) for i, t in enumerate(temps)], batch=2)
    found = events(out, s.config)
    rule_events = {i: e for i, e in found.items() if e["kind"] == "rule"}
    assert sorted(rule_events) == [1, 5]
    first = rule_events[1]
    assert first["check_failures"] == ["hot"] and first["severity"] == "high"
    assert first["id"] != rule_events[5]["id"]


def test_a_different_rule_failing_raises_a_new_event() -> None:
    s = scorer()
    out = score_records(s, [rec(0, 150.0), rec(1, 150.0, 0.0), rec(2, 150.0, 0.0)])
    assert [r.rule_alert for r in out] == [["hot"], ["low_flow"], []]
    assert [e["kind"] for e in events(out, s.config).values()] == ["rule", "rule"]


def test_rule_events_do_not_depend_on_batching_and_their_ids_are_deterministic() -> None:
    records = [rec(i, 150.0 if i % 7 < 3 else 50.0) for i in range(40)]
    one = score_records(scorer(), records, batch=40)
    many = score_records(scorer(), records, batch=3)
    assert [r.rule_alert for r in one] == [r.rule_alert for r in many]
    s = scorer()
    assert [rule_event(r, s.config)["id"] for r in one if r.rule_alert] == [
        rule_event(r, s.config)["id"] for r in many if r.rule_alert
    ]


def test_failing_rules_survive_a_restart_through_the_state_json() -> None:
    s = scorer()
    states: dict[str, SourceState] = {}
    score_records(s, [rec(0, 150.0)], states=states)
    assert states["pump-1"].failing == ["hot"]
    blob = orjson.dumps(states["pump-1"].to_json(s.suite))
    back = {"pump-1": SourceState.from_bytes(blob, s.suite)}
    assert back["pump-1"].failing == ["hot"]
    again = score_records(scorer(), [rec(1, 150.0)], states=back)
    assert again[0].check_failures == ["hot"] and again[0].rule_alert == []


def test_an_old_state_without_rule_memory_loads_with_none_failing() -> None:
    s = scorer()
    data = SourceState.new(s.suite).to_json(s.suite)
    del data["failing"]
    assert SourceState.from_json(data, s.suite).failing == []


def test_a_record_with_both_a_score_and_a_rule_event_gets_the_score_event_with_the_failures() -> (
    None
):
    s = scorer()
    out = score_records(s, [rec(0, 150.0)])
    res = out[0]
    res.alertable = res.escalated = True  # as if its score had crossed too
    event = anomaly_event(res, s.config)
    assert event["kind"] == "score" and event["check_failures"] == ["hot"]


def test_without_rules_nothing_changes() -> None:
    out = score_records(Scorer(ScoringConfig(warmup=50)), [rec(0, 150.0)])
    assert out[0].check_failures == [] and out[0].rule_alert == [] and not out[0].alert


def test_rule_events_and_score_messages_with_unknowns_validate() -> None:
    from tests.schemas import check

    s = scorer()
    out = score_records(s, [rec(0, 150.0, None), rec(1, None)])
    for res in out:
        check("score", score_message(res, s.config))
    check("event", rule_event(out[0], s.config))
