"""The app: health, its OpenAPI document and docs, and one server per data directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from anomstream.api.app import ApiStartError, create_app
from anomstream.api.settings import ApiSettings


def test_healthz_answers_with_the_pool(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "jobs": {}, "workers": 1}


def test_the_openapi_document_says_errors_are_problems(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for path in ("/v1/detect", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/models", "/healthz"):
        assert path in doc["paths"]
    detect = doc["paths"]["/v1/detect"]["post"]["responses"]
    assert set(detect["422"]["content"]) == {"application/problem+json"}
    assert "413" in detect and "default" in detect
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert "ProblemDetails" in doc["components"]["schemas"]
    assert client.get("/docs").status_code == 200


def test_one_server_per_data_directory(settings: ApiSettings, tmp_path: Path) -> None:
    first = create_app(settings, prepare=False)
    with TestClient(first), pytest.raises(ApiStartError, match="in use by another server"):
        create_app(settings, prepare=False)
    with TestClient(create_app(settings, prepare=False)) as again:  # released at shutdown
        assert again.get("/healthz").status_code == 200
