"""The OpenAPI document as the API behaves: every error response is a problem.

FastAPI documents its validation errors as `HTTPValidationError` in `application/json`; this
API answers every error as `application/problem+json` (`anomstream.api.problems`), so each
operation's 4xx/5xx responses, and a `default` for the rest, are rewritten to say so: clients
and schemathesis then check what is really sent.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic.json_schema import models_json_schema

from anomstream.api.problems import MEDIA_TYPE, ProblemDetails

REF = "#/components/schemas/{model}"
COMMON = {
    "401": "no or a wrong bearer token (when the server has tokens)",
    "413": "the body is larger than its limit (max_body_bytes, max_upload_bytes)",
    "422": "a field or row the API cannot use: `errors` names it",
    "500": "the server failed; the error is in its log",
}


def problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": {"$ref": REF.format(model="ProblemDetails")}}},
    }


def with_problems(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with problem responses everywhere and the problem schemas in components."""
    _, defs = models_json_schema([(ProblemDetails, "validation")], ref_template=REF)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(defs.get("$defs", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code in list(responses):
                if code[0] in "45":
                    responses[code] = problem(responses[code].get("description", "an error"))
            if path.startswith("/v1/"):
                for code, text in COMMON.items():
                    if code not in responses and (code != "413" or method in {"post", "put"}):
                        responses[code] = problem(text)
            responses["default"] = problem("any other error, as RFC 9457 problem details")
    return document


def install(app: FastAPI) -> None:
    """Serve the rewritten document at /openapi.json (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)
            app.openapi_schema = with_problems(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
