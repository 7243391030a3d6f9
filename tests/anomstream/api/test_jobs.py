"""`/v1/jobs`: a file from submit to result, idempotent ids, cancel, limits, retention."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from anomstream.api.app import create_app
from anomstream.api.settings import ApiSettings
from detectors.csvdata import read_table
from tests.anomstream.api.conftest import series, wait_for
from tests.schemas import check


def to_csv(records: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["timestamp", "source", "temp", "flow"])
    for r in records:
        writer.writerow([r["ts"], r["source"], r["signals"]["temp"], r["signals"]["flow"]])
    return out.getvalue().encode()


def jsonl(body: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in body.splitlines()]


RECORDS = series(400, spike_at=350) + series(300, source="pump-2", seed=3)


def test_a_csv_job_from_submit_to_results_equals_sync_detect(client: TestClient) -> None:
    submitted = client.post("/v1/jobs", files={"file": ("plant.csv", to_csv(RECORDS), "text/csv")})
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert submitted.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] in {"QUEUED", "RUNNING"}
    done = wait_for(client, job["id"])
    assert done["status"] == "SUCCEEDED", done
    assert done["progress"] == {"done": 700, "total": 700, "fraction": 1.0}
    assert done["summary"]["records"] == 700 and done["summary"]["events"] >= 1
    links = done["links"]
    assert set(links) == {"self", "result.jsonl", "result.csv", "events.jsonl"}

    scores = jsonl(client.get(links["result.jsonl"]).content)
    events = jsonl(client.get(links["events.jsonl"]).content)
    sync = client.post("/v1/detect", json={"records": RECORDS}).json()  # same rows, inline
    assert scores == sync["scores"]
    assert events == sync["events"]
    check("score", scores[0])
    table = client.get(links["result.csv"])
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert len(rows) == 700 and rows[350]["event"] == events[0]["id"]


def test_jsonl_and_inline_json_jobs_score_alike(client: TestClient) -> None:
    lines = b"".join(orjson.dumps(r) + b"\n" for r in RECORDS[:300])
    raw = client.post("/v1/jobs", content=lines, headers={"content-type": "application/x-ndjson"})
    inline = client.post("/v1/jobs", json={"records": RECORDS[:300], "sensitivity": 0.75})
    assert raw.status_code == inline.status_code == 202
    first, second = wait_for(client, raw.json()["id"]), wait_for(client, inline.json()["id"])
    assert first["status"] == second["status"] == "SUCCEEDED"
    a = client.get(first["links"]["result.jsonl"]).content
    b = client.get(second["links"]["result.jsonl"]).content
    assert a == b


def test_a_csv_without_a_source_column_is_named_after_its_file_as_detect_does(
    client: TestClient, tmp_path: Path
) -> None:
    csv_file = tmp_path / "line-4.csv"
    csv_file.write_text(
        "timestamp,temp\n" + "".join(f"{1795514400 + i},{i % 5}\n" for i in range(30))
    )
    upload = client.post(
        "/v1/jobs", files={"file": (csv_file.name, csv_file.read_bytes(), "text/csv")}
    )
    raw = client.post(
        "/v1/jobs", content=csv_file.read_bytes(), headers={"content-type": "text/csv"}
    )
    named, unnamed = wait_for(client, upload.json()["id"]), wait_for(client, raw.json()["id"])
    sources = {
        jsonl(client.get(job["links"]["result.jsonl"]).content)[0]["source"]
        for job in (named, unnamed)
    }
    # `detect`'s reader names the source after the file; a raw body has no name: `api`
    assert sources == {read_table(csv_file).sources[0], "api"} == {"line-4", "api"}


def test_a_bad_record_fails_the_job_with_its_line(client: TestClient) -> None:
    lines = orjson.dumps(RECORDS[0]) + b"\n" + b'{"source": "p", "ts": "never", "signals": {}}\n'
    job = client.post(
        "/v1/jobs?format=jsonl", content=lines, headers={"content-type": "application/octet-stream"}
    )
    assert job.status_code == 202
    done = wait_for(client, job.json()["id"])
    assert done["status"] == "FAILED"
    assert done["error"].startswith("line 2:")
    answer = client.get(f"/v1/jobs/{done['id']}/result.jsonl")
    assert answer.status_code == 409


def test_the_same_id_and_body_is_the_same_job(idle: TestClient) -> None:
    body = to_csv(RECORDS[:50])
    first = idle.post("/v1/jobs?id=nightly-7", files={"file": ("plant.csv", body, "text/csv")})
    again = idle.post("/v1/jobs?id=nightly-7", files={"file": ("plant.csv", body, "text/csv")})
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    renamed = idle.post("/v1/jobs?id=nightly-7", files={"file": ("other.csv", body, "text/csv")})
    assert renamed.status_code == 409  # the file's name is a CSV's default source
    other = idle.post(
        "/v1/jobs?id=nightly-7",
        files={"file": ("plant.csv", body + b"1795600000,pump-1,1,2\n", "text/csv")},
    )
    assert other.status_code == 409
    assert other.json()["type"].endswith("/id-conflict")
    options = idle.post(
        "/v1/jobs?id=nightly-7&target_fap=0.01", files={"file": ("plant.csv", body, "text/csv")}
    )
    assert options.status_code == 409  # same file, other options: another body
    assert idle.get("/healthz").json()["jobs"] == {"QUEUED": 1}


def test_cancel_a_queued_job(idle: TestClient) -> None:
    queued = idle.post(
        "/v1/jobs", content=to_csv(RECORDS[:20]), headers={"content-type": "text/csv"}
    ).json()
    canceled = idle.delete(f"/v1/jobs/{queued['id']}")
    assert canceled.status_code == 200 and canceled.json()["status"] == "CANCELED"
    again = idle.delete(f"/v1/jobs/{queued['id']}")
    assert again.status_code == 409 and again.json()["type"].endswith("/job-ended")


def test_a_running_job_is_stopped_when_canceled(client: TestClient) -> None:
    big = series(60_000, seed=5)
    job = client.post("/v1/jobs", content=to_csv(big), headers={"content-type": "text/csv"}).json()
    deadline = time.monotonic() + 60
    while client.get(f"/v1/jobs/{job['id']}").json()["status"] == "QUEUED":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    running = client.get(f"/v1/jobs/{job['id']}").json()
    assert running["status"] == "RUNNING"
    pid = client.app.state.api.store.get(job["id"]).pid  # type: ignore[attr-defined]
    assert client.delete(f"/v1/jobs/{job['id']}").json()["status"] == "CANCELED"
    assert (
        not Path(f"/proc/{pid}").exists()
        or b"zombie" in Path(f"/proc/{pid}/status").read_bytes().lower()
    )
    time.sleep(0.5)
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "CANCELED"


def test_jobs_beyond_the_limit_are_429(tmp_path: Path) -> None:
    settings = ApiSettings(data_dir=tmp_path / "api", models_dir=tmp_path, max_jobs=2)
    idle = TestClient(create_app(settings, prepare=False))
    body = to_csv(RECORDS[:10])
    for i in range(2):
        assert (
            idle.post(
                f"/v1/jobs?id=j{i}", content=body, headers={"content-type": "text/csv"}
            ).status_code
            == 202
        )
    refused = idle.post("/v1/jobs", content=body, headers={"content-type": "text/csv"})
    assert refused.status_code == 429
    assert refused.json()["limit"] == {"name": "max_jobs", "value": 2}
    assert refused.headers["retry-after"]
    # a retry of a job already in is no new job
    assert (
        idle.post("/v1/jobs?id=j0", content=body, headers={"content-type": "text/csv"}).status_code
        == 202
    )


@pytest.mark.parametrize(
    ("url", "content", "headers", "status", "kind"),
    [
        (
            "/v1/jobs?signals=nope",
            b"timestamp,t\n1,2\n",
            {"content-type": "text/csv"},
            422,
            "invalid-csv",
        ),
        ("/v1/jobs", b"", {"content-type": "text/csv"}, 422, "invalid-request"),
        ("/v1/jobs", b"<xml/>", {"content-type": "application/xml"}, 415, "unsupported-media-type"),
        ("/v1/jobs", b"x", {"content-type": "application/octet-stream"}, 422, "invalid-request"),
        (
            "/v1/jobs?model=absent",
            b"timestamp,t\n1,2\n",
            {"content-type": "text/csv"},
            422,
            "unknown-model",
        ),
        (
            "/v1/jobs?id=../../etc",
            b"timestamp,t\n1,2\n",
            {"content-type": "text/csv"},
            422,
            "invalid-request",
        ),
        (
            "/v1/jobs?model=m",
            b'{"records": []}',
            {"content-type": "application/json"},
            422,
            "invalid-request",
        ),
    ],
)
def test_submissions_it_cannot_use_are_problems(
    idle: TestClient, url: str, content: bytes, headers: dict[str, str], status: int, kind: str
) -> None:
    answer = idle.post(url, content=content, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["type"].endswith("/" + kind)
    assert not list((idle.app.state.api.settings.data_dir / "uploads").glob("*"))  # type: ignore[attr-defined]


def test_results_expire_after_the_retention(tmp_path: Path) -> None:
    settings = ApiSettings(data_dir=tmp_path / "api", models_dir=tmp_path, retention_hours=1e-6)
    with TestClient(create_app(settings, prepare=False)) as client:
        job = client.post(
            "/v1/jobs", content=to_csv(RECORDS[:30]), headers={"content-type": "text/csv"}
        ).json()
        assert wait_for(client, job["id"])["status"] == "SUCCEEDED"
        client.app.state.api.runner.sweep()  # type: ignore[attr-defined]
        expired = client.get(f"/v1/jobs/{job['id']}").json()
        assert expired["expired"] is True and set(expired["links"]) == {"self"}
        assert client.get(f"/v1/jobs/{job['id']}/result.csv").status_code == 410
        assert not (settings.data_dir / "jobs" / job["id"]).exists()
