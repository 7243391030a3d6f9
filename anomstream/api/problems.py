"""Errors as RFC 9457 problem details (`application/problem+json`), for every failure.

One exception (`Problem`) for what the routes refuse, and handlers that turn FastAPI's own
errors (validation, unknown route, wrong method) into the same shape, naming the field and the
row at fault (`anomstream.api.app` installs the handlers). Unexpected errors never reach the
client as a traceback: `internal_error` is what the request middleware sends after logging one
(`anomstream.api.middleware`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

PROBLEM_TYPES = "https://anomstream.dev/problems/"
"""`type` is this plus the kind (docs/api.md lists every kind)."""
MEDIA_TYPE = "application/problem+json"
TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}
"""RFC 9110's names, where Python's `HTTPStatus` still has the older ones."""
MAX_ERRORS = 20
"""Field errors listed in one problem (a bad 10 000-row body would list them all)."""


class FieldError(BaseModel):
    """One field at fault: its path in the request (`records[3].ts`, `query.target_fap`)."""

    field: str
    row: int | None = None
    """Index of the record (or data row) at fault, when the field is inside one."""
    message: str


class Limit(BaseModel):
    """The limit a request went beyond: the setting's name and value (docs/api.md)."""

    name: str
    value: float


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, with the fields and limit at fault where there is one."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None
    limit: Limit | None = None


class Problem(Exception):
    """A refusal the client can act on: status, kind (the `type` suffix) and one line."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        title: str | None = None,
        errors: Sequence[FieldError] = (),
        limit: tuple[str, float] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title or TITLES.get(status) or HTTPStatus(status).phrase
        self.detail = detail
        self.errors = list(errors)
        self.limit = limit
        self.headers = dict(headers or {})

    def body(self, instance: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": PROBLEM_TYPES + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance is not None:
            out["instance"] = instance
        if self.errors:
            out["errors"] = [e.model_dump(exclude_none=True) for e in self.errors[:MAX_ERRORS]]
        if self.limit is not None:
            out["limit"] = {"name": self.limit[0], "value": self.limit[1]}
        return out

    def response(self, instance: str | None = None) -> Response:
        return Response(
            orjson.dumps(self.body(instance)),
            status_code=self.status,
            media_type=MEDIA_TYPE,
            headers=self.headers,
        )


def too_large(limit: str, value: int, what: str) -> Problem:
    return Problem(
        413,
        "too-large",
        f"{what} is larger than {value} bytes (setting {limit})",
        limit=(limit, value),
    )


def internal_error() -> Problem:
    return Problem(
        500,
        "internal",
        "the server failed on this request; the error is in its log",
        title="Internal Server Error",
    )


def field_path(loc: Sequence[int | str]) -> tuple[str, int | None]:
    """`("body", "records", 3, "ts")` -> (`records[3].ts`, 3): where it is, and its row."""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    row = None
    if len(parts) >= 2 and parts[0] in {"records", "data"} and isinstance(parts[1], int):
        row = parts[1]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body", row


def validation_problem(errors: Sequence[Mapping[str, Any]]) -> Problem:
    fields = []
    for err in errors:
        field, row = field_path(err.get("loc", ()))
        message = str(err.get("msg", "invalid"))
        if err.get("type") == "json_invalid":
            field, message = "body", f"not valid JSON ({err.get('ctx', {}).get('error', message)})"
        fields.append(FieldError(field=field, row=row, message=message))
    first = fields[0] if fields else FieldError(field="body", message="invalid")
    more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
    return Problem(422, "invalid-request", f"{first.field}: {first.message}{more}", errors=fields)
