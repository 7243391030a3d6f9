"""harness.registry on a real JVM: the Confluent-compatible API registers and serves schemas."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.registry import Registry, registry_problem

_PROBLEM = registry_problem()

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or ""),
    pytest.mark.skipif(
        os.environ.get("ANOMSTREAM_TEST_BROKER", "tansu") == "tansu",
        reason="the registry runs in the Apache Kafka lane; the Tansu lane stays quick",
    ),
]

_SCHEMA = json.dumps(
    {"type": "record", "name": "R", "fields": [{"name": "a", "type": "long"}]},
    separators=(",", ":"),
)
_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


def _call(url: str, body: object | None = None) -> tuple[int, object]:
    """(status, decoded JSON) of one request; HTTP errors are answers here, not exceptions."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": _CONTENT_TYPE})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with Registry(Path(tmp_path_factory.mktemp("registry"))) as running:
        yield running


def test_register_then_read_back_by_id(registry: Registry) -> None:
    status, answer = _call(f"{registry.url}/subjects/test-value/versions", {"schema": _SCHEMA})
    assert status == 200, answer
    assert isinstance(answer, dict) and isinstance(answer.get("id"), int)
    schema_id = answer["id"]

    status, again = _call(f"{registry.url}/subjects/test-value/versions", {"schema": _SCHEMA})
    assert (status, again) == (200, {"id": schema_id})  # same schema, same id

    status, fetched = _call(f"{registry.url}/schemas/ids/{schema_id}")
    assert status == 200
    assert isinstance(fetched, dict)
    assert json.loads(fetched["schema"]) == json.loads(_SCHEMA)


def test_unknown_id_is_404_40403(registry: Registry) -> None:
    status, answer = _call(f"{registry.url}/schemas/ids/99999")
    assert status == 404
    assert isinstance(answer, dict) and answer.get("error_code") == 40403
