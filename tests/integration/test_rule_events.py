"""Validation rules on a real broker: a worker started with a rules file lists each record's
failures in its score message and raises one rule event per failing run."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.integration.conftest import dumps, record
from tests.schemas import check

pytestmark = pytest.mark.integration


def test_a_worker_with_a_rules_file_fills_check_failures_and_raises_rule_events(
    lane, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nname = "too_hot"\nexpr = "temp < 100"\nseverity = "high"\n')
    run = lane(rules_file=str(rules))
    run.create_topics()
    run.worker()
    hot = {5, 6, 7, 12}  # two failing runs
    records = [record("pump-1", i, {"temp": 150.0 if i in hot else 70.0}) for i in range(20)]
    run.produce([(b"pump-1", dumps(r)) for r in records])
    s = run.settings
    scores = [orjson.loads(m.value) for m in run.read(s.kafka.topic_scores, 20, timeout=120)]
    assert len(scores) == 20
    for msg in scores:
        check("score", msg)
    failing = {i for i, m in enumerate(scores) if m["check_failures"] == ["too_hot"]}
    assert failing == hot
    events = [orjson.loads(m.value) for m in run.read(s.kafka.topic_anomalies, 2, timeout=30)]
    rule_events = [e for e in events if e["kind"] == "rule"]
    assert [e["ts"] for e in rule_events] == [scores[5]["ts"], scores[12]["ts"]]
    for event in rule_events:
        check("event", event)
        assert event["check_failures"] == ["too_hot"] and event["severity"] == "high"
