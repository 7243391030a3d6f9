"""`POST /v1/detect`: the stream's scores for inline records, equal to `anomstream detect`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from anomstream.api.app import create_app
from anomstream.api.settings import ApiSettings
from detectors.csvdata import read_table
from tests.anomstream.api.conftest import series
from tests.anomstream.test_cli import anomstream
from tests.coupled import coupled, write_csv, zero_crossing
from tests.schemas import check


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_sync_detect_equals_anomstream_detect_on_the_same_rows(
    model_dir: Path, tmp_path: Path
) -> None:
    data = write_csv(tmp_path / "broken.csv", coupled(700, seed=9, break_at=zero_crossing(450)))
    out = tmp_path / "scores.jsonl"
    done = anomstream("detect", str(model_dir), str(data), "--out", str(out))
    assert done.returncode == 0, done.stderr
    expected, expected_events = read_jsonl(out), read_jsonl(tmp_path / "scores.events.jsonl")
    assert expected_events, "the break must raise events for the comparison to mean much"

    table = read_table(data)
    records = [
        {
            "source": table.sources[i],
            "ts": table.ts_text[i],
            "signals": {
                n: None if math.isnan(v) else v for n, v in zip(table.signals, row, strict=True)
            },
        }
        for i, row in enumerate(table.values.tolist())
    ]
    settings = ApiSettings(data_dir=tmp_path / "api", models_dir=model_dir.parent)
    with TestClient(create_app(settings, prepare=False)) as client:
        named = client.post("/v1/detect", json={"records": records, "model": model_dir.name})
        routed = client.post("/v1/detect", json={"records": records})
    assert named.status_code == 200, named.text
    answer = named.json()
    assert answer["scores"] == expected
    assert answer["events"] == expected_events
    assert answer["summary"]["events"] == len(expected_events)
    for msg in answer["scores"][::50]:
        check("score", msg)
    for event in answer["events"]:
        check("event", event)
    # no model named: the worker's routing, and the only model serves every source ("*")
    assert routed.json()["models"] == answer["models"] == [expected[0]["model"]]
    assert routed.json()["scores"] == expected


def test_the_columnar_form_scores_as_the_record_form(client: TestClient) -> None:
    records = series(260, source="line-2", spike_at=240)
    columnar = {
        "source": "line-2",
        "signalNames": ["temp", "flow"],
        "data": [
            {"timestamp": r["ts"], "values": [r["signals"]["temp"], r["signals"]["flow"]]}
            for r in records
        ],
    }
    by_record = client.post("/v1/detect", json={"records": records})
    by_column = client.post("/v1/detect", json=columnar)
    assert by_record.status_code == by_column.status_code == 200
    assert by_column.json()["scores"] == by_record.json()["scores"]


def test_a_spike_after_the_warm_up_raises_an_event_naming_its_signal(client: TestClient) -> None:
    answer = client.post("/v1/detect", json={"records": series(400, spike_at=350)}).json()
    assert answer["models"] == []
    assert answer["scores"][350]["is_anomaly"] is True
    assert [e["ts"] for e in answer["events"]] == [answer["scores"][350]["ts"]]
    assert answer["events"][0]["signals"][0]["name"] == "temp"
    check("event", answer["events"][0])
    summary = answer["summary"]
    assert summary["records"] == 400
    assert 0 < summary["warming_up"] < 350
    assert summary["events"] == 1


def test_a_short_call_says_what_it_could_not_judge(client: TestClient) -> None:
    answer = client.post("/v1/detect", json={"records": series(20, spike_at=10)}).json()
    assert answer["summary"]["warming_up"] == 20
    assert answer["events"] == []
    assert any(
        "20 of 20 records were scored while their source warmed up" in n for n in answer["notes"]
    )


def test_sensitivity_is_target_fap_on_a_log_scale(client: TestClient) -> None:
    records = series(300, spike_at=280)
    by_fap = client.post("/v1/detect", json={"records": records, "target_fap": 1e-3}).json()
    by_s = client.post("/v1/detect", json={"records": records, "sensitivity": 0.75}).json()
    assert by_s["target_fap"] == pytest.approx(1e-3)
    assert [m["score"] for m in by_s["scores"]] == [m["score"] for m in by_fap["scores"]]
    loud = client.post("/v1/detect", json={"records": records, "sensitivity": 1.0}).json()
    assert loud["threshold"] == pytest.approx(0.9)
    assert loud["summary"]["anomalous"] >= by_s["summary"]["anomalous"]


@pytest.mark.parametrize(
    ("body", "kind", "field"),
    [
        ({"records": series(3), "model": "nonesuch"}, "unknown-model", "model"),
        ({"records": series(3), "target_fap": 0.01, "sensitivity": 0.2}, "invalid-request", "body"),
        (
            {"records": [{"source": "p", "ts": "soon", "signals": {"t": 1}}]},
            "invalid-record",
            "records[0]",
        ),
        (
            {"records": [{"source": "p", "ts": 1, "signals": {}}]},
            "invalid-request",
            "records[0].signals",
        ),
        (
            {"signalNames": ["a", "a"], "data": [{"timestamp": 1, "values": [1, 2]}]},
            "invalid-request",
            None,
        ),
    ],
)
def test_refusals_are_problems_naming_the_field(
    client: TestClient, body: dict[str, Any], kind: str, field: str | None
) -> None:
    answer = client.post("/v1/detect", json=body)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"].endswith("/" + kind)
    assert problem["status"] == 422
    if field is not None:
        assert problem["errors"][0]["field"] == field


def test_rows_beyond_the_limit_are_refused_naming_it(tmp_path: Path) -> None:
    settings = ApiSettings(data_dir=tmp_path / "api", models_dir=tmp_path, max_rows=10)
    with TestClient(create_app(settings, prepare=False)) as client:
        answer = client.post("/v1/detect", json={"records": series(11)})
    assert answer.status_code == 422
    assert answer.json()["limit"] == {"name": "max_rows", "value": 10}
