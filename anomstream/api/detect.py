"""`POST /v1/detect`: inline records in, score messages and events out, synchronously.

Stateless: every call starts from fresh detector states, so its records are the whole
history; `summary.warming_up` and `notes` say how much of the call the detectors could judge.
Scoring runs in a worker thread (it is CPU bound, and the event loop keeps serving).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from starlette.responses import Response

from anomstream.api.catalog import Catalog, ModelNotFound
from anomstream.api.context import Api, api
from anomstream.api.inputs import DetectRequest, to_records
from anomstream.api.problems import FieldError, Problem
from anomstream.api.rules import call_rules
from anomstream.api.scoring import choose_config, detect
from detectors.autoencoder import OnnxAutoencoder
from detectors.model_spec import ModelError

router = APIRouter(tags=["detect"])


class Summary(BaseModel):
    records: int
    sources: int
    anomalous: int = Field(description="records with is_anomaly")
    events: int
    warming_up: int = Field(description="records scored while their source warmed up")
    model_scored: int = Field(description="records the autoencoder judged (a full window)")
    check_failed: int = Field(description="records that failed a validation rule")


class DetectResponse(BaseModel):
    """The score message of every record (in order) and the events they raise."""

    models: list[str] = Field(description="labels of the autoencoders that served the call")
    target_fap: float
    threshold: float = Field(description="1 - target_fap: a score above it is anomalous")
    summary: Summary
    notes: list[str] = Field(description="what the call could not judge, and why")
    scores: list[dict[str, Any]] = Field(
        description="one score message per record, as the `scores` topic carries them "
        "(schemas/score.schema.json)"
    )
    events: list[dict[str, Any]] = Field(
        description="the anomaly events, as the `anomalies` topic carries them "
        "(schemas/event.schema.json)"
    )


def load_model(catalog: Catalog, name: str | None) -> OnnxAutoencoder | None:
    """The named model, or a 422 naming the `model` field."""
    if name is None:
        return None
    try:
        return catalog.load(name)
    except ModelNotFound as exc:
        raise Problem(
            422,
            "unknown-model",
            f"{exc.args[0]} (GET /v1/models lists them)",
            errors=[FieldError(field="model", message="no such model")],
        ) from None
    except ModelError as exc:
        raise Problem(
            422,
            "unusable-model",
            str(exc),
            errors=[FieldError(field="model", message="cannot be served")],
        ) from None


def run_detect(state: Api, body: DetectRequest) -> dict[str, Any]:
    settings = state.settings
    records = to_records(body, settings.max_rows, settings.max_signals)
    rules = call_rules(state.rules, body.rules)
    served = load_model(state.catalog, body.model)
    book = None if served is not None else state.catalog.routing()
    config = choose_config(served, body.target_fap, body.sensitivity, settings.target_fap)
    found = detect(records, served, book, config, rules=rules)
    state.metrics.records.inc(len(found.scored))
    return {
        "models": sorted({r.model for r in found.scored if r.model}),
        "target_fap": config.target_fap,
        "threshold": config.threshold,
        "summary": found.summary(),
        "notes": found.notes(),
        "scores": found.messages(),
        "events": found.events(),
    }


@router.post(
    "/v1/detect",
    response_model=DetectResponse,
    summary="Score inline records (record or columnar form)",
)
async def post_detect(body: DetectRequest, state: Annotated[Api, Depends(api)]) -> Response:
    """Score the records with `anomstream detect`'s code path; stateless (see `notes`)."""
    answer = await run_in_threadpool(run_detect, state, body)
    return Response(orjson.dumps(answer), media_type="application/json")
