"""Validation rules in the API: the server's rules file, a call's inline `rules`, jobs too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from anomstream.api.app import ApiStartError, create_app
from anomstream.api.settings import ApiSettings
from detectors.config import ScoringConfig
from detectors.offline import score_records, scorer_for
from detectors.rules import RuleBook, parse_rules
from streams.codec import Limits, to_record
from tests.anomstream.api.conftest import series, wait_for

HOT = {"name": "hot", "expr": "temp < 61", "severity": "high"}
"""The series' temp is 60 + N(0, 1): fails on about 16 % of records."""


def body(n: int = 60, **extra: Any) -> dict[str, Any]:
    return {"records": series(n), **extra}


def test_inline_rules_fill_check_failures_and_unknowns_as_detect_does(client: TestClient) -> None:
    records = series(60)
    records[5]["signals"]["flow"] = None
    low_flow = {"name": "low_flow", "expr": "flow > 2.9 and temp > 0"}
    answer = client.post("/v1/detect", json={"records": records, "rules": [HOT, low_flow]})
    assert answer.status_code == 200, answer.text
    scores = answer.json()["scores"]
    # the same rules through detect's code path, on the same records
    limits = Limits(max_signals=100, max_future=0.0)
    book = RuleBook(parse_rules([HOT, low_flow]))
    scorer = scorer_for(None, ScoringConfig(), rules=book)
    expected = score_records(scorer, [to_record(r, None, limits) for r in records])
    assert [m.get("check_failures", []) for m in scores] == [r.check_failures for r in expected]
    assert [m.get("check_unknown", []) for m in scores] == [r.check_unknown for r in expected]
    assert any("hot" in m["check_failures"] for m in scores)
    assert scores[5]["check_unknown"] == ["low_flow"] or "low_flow" in scores[5].get(
        "check_failures", []
    )
    kinds = [e["kind"] for e in answer.json()["events"]]
    assert "rule" in kinds
    summary = answer.json()["summary"]
    assert summary["check_failed"] == sum(bool(r.check_failures) for r in expected) > 0


def test_without_rules_nothing_fails(client: TestClient) -> None:
    answer = client.post("/v1/detect", json=body())
    assert answer.status_code == 200
    assert all(not m.get("check_failures") for m in answer.json()["scores"])
    assert answer.json()["summary"]["check_failed"] == 0


@pytest.mark.parametrize(
    ("rule", "field", "needle"),
    [
        (
            {"name": "bad", "expr": "1 + temp.real < 1"},
            "rules[1]",
            "column 5: not allowed: attribute",
        ),
        ({"name": "bad", "expr": "round(temp) < 1"}, "rules[1]", "calling 'round'"),
        ({"name": "bad", "expr": "temp <"}, "rules[1]", "rule 'bad'"),
        ({"name": "has space", "expr": "temp < 1"}, "rules[1]", "name must be"),
        ({"name": "ok", "expr": "t < 1", "sources": []}, "rules[1]", "sources must be"),
        ({"name": "hot", "expr": "temp < 1"}, "rules[1].name", "defined twice"),
    ],
)
def test_a_bad_inline_rule_is_a_422_naming_the_rule_and_the_position(
    client: TestClient, rule: dict[str, Any], field: str, needle: str
) -> None:
    answer = client.post("/v1/detect", json=body(5, rules=[HOT, rule]))
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["type"].endswith("/invalid-rule")
    assert problem["detail"].startswith("rules[1]: ") and needle in problem["detail"]
    assert problem["errors"][0]["field"] == field
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_a_rule_that_is_not_a_rule_object_is_a_422(client: TestClient) -> None:
    for rule in (
        {"name": "x"},
        {"name": "x", "expr": "a < 1", "when": 1},
        {"name": "x", "expr": "a < 1", "severity": "meh"},
    ):
        answer = client.post("/v1/detect", json=body(5, rules=[rule]))
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"].startswith("rules[0]")


def test_the_server_rules_file_serves_every_call_and_a_call_may_add_to_it(
    tmp_path: Path,
) -> None:
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text('[[rules]]\nname = "hot"\nexpr = "temp < 61"\n')
    settings = ApiSettings(
        data_dir=tmp_path / "api", models_dir=tmp_path / "models", rules_file=rules_file
    )
    with TestClient(create_app(settings, prepare=False)) as client:
        plain = client.post("/v1/detect", json=body())
        more = client.post("/v1/detect", json=body(rules=[{"name": "cold", "expr": "temp > 59.5"}]))
        clash = client.post("/v1/detect", json=body(rules=[{"name": "hot", "expr": "t < 1"}]))
    failing = [m.get("check_failures", []) for m in plain.json()["scores"]]
    assert any(f == ["hot"] for f in failing)
    both = {n for m in more.json()["scores"] for n in m.get("check_failures", [])}
    assert both == {"hot", "cold"}
    assert clash.status_code == 422 and "server's rules file" in clash.json()["detail"]


def test_a_bad_server_rules_file_stops_start_up_in_one_line(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text('[[rules]]\nname = "hot"\nexpr = "__import__(1) < 2"\n')
    settings = ApiSettings(
        data_dir=tmp_path / "api", models_dir=tmp_path / "models", rules_file=rules_file
    )
    with pytest.raises(ApiStartError) as info:
        create_app(settings, prepare=False)
    message = str(info.value)
    assert "\n" not in message and "rule 'hot'" in message and "column" in message


def test_a_job_judges_the_call_rules_too(client: TestClient) -> None:
    sent = client.post("/v1/jobs", json=body(rules=[HOT]))
    assert sent.status_code == 202, sent.text
    job = wait_for(client, sent.json()["id"])
    assert job["status"] == "SUCCEEDED", job
    assert job["summary"]["check_failed"] > 0
    lines = client.get(job["links"]["result.jsonl"]).text.splitlines()
    assert any('"check_failures":["hot"]' in line for line in lines)
    bad = client.post("/v1/jobs", json=body(rules=[{"name": "x", "expr": "a <"}]))
    assert bad.status_code == 422 and bad.json()["type"].endswith("/invalid-rule")
