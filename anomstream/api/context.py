"""What every route needs, built once by `create_app` and reached through `app.state`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from anomstream.api.catalog import Catalog
from anomstream.api.metrics import ApiMetrics
from anomstream.api.runner import Runner
from anomstream.api.settings import ApiSettings
from anomstream.api.store import JobStore
from detectors.rules import RuleBook


@dataclass(frozen=True, slots=True)
class Api:
    settings: ApiSettings
    store: JobStore
    runner: Runner
    catalog: Catalog
    metrics: ApiMetrics
    rules: RuleBook | None = None
    """The server's validation rules (`ANOMSTREAM_API_RULES_FILE`), read at start-up."""


def api(request: Request) -> Api:
    """The dependency routes take: `api: Annotated[Api, Depends(api)]`."""
    found: Api = request.app.state.api
    return found
