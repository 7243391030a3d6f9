"""Bearer tokens: every /v1 route needs one when the server has a tokens file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from anomstream.api.app import create_app
from anomstream.api.auth import TokensError, read_tokens
from anomstream.api.settings import ApiSettings
from tests.anomstream.api.conftest import series

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[TestClient]:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# operators\n{TOKEN}\n\nanother-token-0123456789\n")
    settings = ApiSettings(data_dir=tmp_path / "api", models_dir=tmp_path, tokens_file=tokens)
    with TestClient(create_app(settings, prepare=False)) as client:
        yield client


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": f"Basic {TOKEN}"}],
)
def test_without_a_good_token_every_v1_route_is_401(
    guarded: TestClient, headers: dict[str, str]
) -> None:
    for method, path in [("POST", "/v1/detect"), ("GET", "/v1/models"), ("GET", "/v1/jobs/x")]:
        answer = guarded.request(method, path, headers=headers, json={"records": series(2)})
        assert answer.status_code == 401, (method, path)
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["type"].endswith("/unauthorized")


def test_a_good_token_passes_and_health_needs_none(guarded: TestClient) -> None:
    ok = guarded.post(
        "/v1/detect",
        json={"records": series(2)},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert ok.status_code == 200
    assert guarded.get("/healthz").status_code == 200
    assert guarded.get("/metrics").status_code == 200
    assert guarded.get("/openapi.json").json()["components"]["securitySchemes"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [("# nothing\n\n", "holds no token"), ("short\n", "at least 16 characters")],
)
def test_unusable_tokens_files_stop_start_up(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "tokens"
    path.write_text(text)
    with pytest.raises(TokensError, match=needle):
        read_tokens(path)
    with pytest.raises(TokensError, match="not found"):
        read_tokens(tmp_path / "absent")
