"""The OpenAPI document, tested: a property-based run of schemathesis against the app finds no
5xx and no response that breaks its own schema (unit tier: in-process ASGI, few examples)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from anomstream.api.app import create_app
from anomstream.api.settings import ApiSettings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    """A generated JSONL body: whatever was generated, one JSON value a line."""
    items = value if isinstance(value, list) else [value]
    return b"".join(orjson.dumps(item) + b"\n" for item in items)


def api_schema() -> Any:
    """The app on a data directory of its own (kept until the process exits: schemathesis
    loads the schema when pytest collects this module)."""
    root = Path(ROOT.name)
    app = create_app(
        ApiSettings(data_dir=root / "api", models_dir=root / "models", max_jobs=4),
        prepare=False,
    )
    # The jobs' HTTP surface is under test, not the jobs: nothing is dispatched to processes
    # (accepted jobs stay QUEUED, and the queue's limit answers 429 once it is full).
    app.state.api.runner._dispatch = lambda: None
    return schemathesis.openapi.from_asgi("/openapi.json", app)


ROOT = tempfile.TemporaryDirectory(prefix="anomstream-schemathesis-")
schema = api_schema()


@schema.parametrize()  # type: ignore[untyped-decorator]  # schemathesis: untyped
@settings(
    max_examples=100,
    derandomize=True,  # the same examples every run: CI does not flake on a new find
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_5xx_and_no_response_breaks_its_schema(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)
