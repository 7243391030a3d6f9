"""Body limits (413 naming the setting) and the last resort (a 500 problem, no traceback)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from anomstream.api import detect
from anomstream.api.app import create_app
from anomstream.api.middleware import BodyLimit
from anomstream.api.settings import ApiSettings
from tests.anomstream.api.conftest import series


@pytest.fixture
def small(tmp_path: Path) -> Iterator[TestClient]:
    settings = ApiSettings(
        data_dir=tmp_path / "api",
        models_dir=tmp_path,
        max_body_bytes=2048,
        max_upload_bytes=4096,
    )
    with TestClient(create_app(settings, prepare=False)) as client:
        yield client


def test_a_body_beyond_its_declared_length_limit_is_a_413(small: TestClient) -> None:
    body = orjson.dumps({"records": series(40)})
    assert len(body) > 2048
    answer = small.post("/v1/detect", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["limit"] == {"name": "max_body_bytes", "value": 2048}


def test_a_streamed_body_is_cut_off_as_soon_as_it_passes_the_limit() -> None:
    """No Content-Length (chunked): refused at the chunk that passes the limit, and the app
    reading on is told the client left; nothing it sends afterwards goes out."""
    chunks = [b"x" * 600 for _ in range(10)]
    sent: list[MutableMapping[str, Any]] = []
    reads: list[str] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            reads.append(message["type"])
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})

    limited = BodyLimit(app, lambda scope: ("max_body_bytes", 2048))
    asyncio.run(limited({"type": "http", "path": "/v1/detect", "headers": []}, receive, send))
    assert reads == ["http.request"] * 3 + ["http.disconnect"]  # 1800 bytes, then 2400
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]
    assert orjson.loads(sent[1]["body"])["limit"]["name"] == "max_body_bytes"


def test_uploads_have_their_own_limit(small: TestClient) -> None:
    csv = b"timestamp,t\n" + b"".join(b"%d,1.0\n" % (1795514400 + i) for i in range(400))
    assert 2048 < len(csv) > 4096
    answer = small.post("/v1/jobs", content=csv, headers={"content-type": "text/csv"})
    assert answer.status_code == 413
    assert answer.json()["limit"] == {"name": "max_upload_bytes", "value": 4096}
    fits = csv[:3000]
    fits = fits[: fits.rindex(b"\n") + 1]
    assert (
        small.post("/v1/jobs", content=fits, headers={"content-type": "text/csv"}).status_code
        == 202
    )


def test_an_unexpected_error_is_a_500_problem_without_traceback(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug, with internals: /secret/path")

    monkeypatch.setattr(detect, "detect", broken)
    answer = client.post("/v1/detect", json={"records": series(3)})
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"].endswith("/internal")
    assert "secret" not in answer.text and "Traceback" not in answer.text
    assert "a bug, with internals" in caplog.text  # the operator's log has it


@pytest.mark.parametrize(
    ("method", "path", "status", "kind"),
    [
        ("GET", "/v1/nowhere", 404, "not-found"),
        ("GET", "/v1/detect", 405, "method-not-allowed"),
        ("GET", "/v1/jobs/none-such", 404, "not-found"),
    ],
)
def test_routing_errors_are_problems(
    client: TestClient, method: str, path: str, status: int, kind: str
) -> None:
    answer = client.request(method, path)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("/" + kind)
