"""`/v1/models`: train a model from an upload (a job running `anomstream train`), list the
models directory, show one model (its model.json and plots as PNG links).

Training is `anomstream train` in a process of its own with the options of the command, so
the server never imports TensorFlow and the model it writes is the command's, byte for byte.
"""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from starlette.responses import FileResponse, Response

from anomstream.api.catalog import Entry, ModelNotFound
from anomstream.api.context import Api, api
from anomstream.api.inputs import ModelName
from anomstream.api.jobs import JobId, JobView, accepted, enqueue
from anomstream.api.problems import FieldError, Problem
from anomstream.api.uploads import UPLOAD_BODY, place, spool

router = APIRouter(tags=["models"])


class ModelSummary(BaseModel):
    name: str = Field(description="the model directory's name (`model` in detect calls)")
    label: str | None = Field(description="name-version, what score messages carry in `model`")
    version: str | None
    signals: list[str]
    window: int | None
    sources: list[str] = Field(description="glob patterns of the sources it serves")
    target_fap: float | None
    error: str | None = Field(description="why the directory cannot be served")
    links: dict[str, str]


class ModelDetail(ModelSummary):
    spec: dict[str, Any] | None = Field(description="the directory's model.json")
    plots: dict[str, str] = Field(description="plot file -> its PNG link")


def summary(entry: Entry) -> dict[str, Any]:
    spec = entry.spec or {}
    version = spec.get("version")
    return {
        "name": entry.name,
        "label": f"{spec['name']}-{version}" if "name" in spec and version else None,
        "version": version,
        "signals": [str(s) for s in spec.get("signals", [])],
        "window": spec.get("window"),
        "sources": [str(s) for s in spec.get("sources", ["*"])],
        "target_fap": spec.get("target_fap"),
        "error": entry.error,
        "links": {"self": f"/v1/models/{entry.name}"},
    }


def detail(entry: Entry) -> dict[str, Any]:
    base = f"/v1/models/{entry.name}/plots/"
    return {
        **summary(entry),
        "spec": entry.spec,
        "plots": {plot: base + plot for plot in entry.plots()},
    }


def entry_of(state: Api, name: str) -> Entry:
    try:
        return state.catalog.entry(name)
    except ModelNotFound as exc:
        raise Problem(404, "not-found", str(exc)) from None


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/v1/models", response_model=list[ModelSummary], summary="The models directory")
async def list_models(state: Annotated[Api, Depends(api)]) -> Response:
    entries = await run_in_threadpool(state.catalog.entries)
    return _json([summary(e) for e in entries])


@router.get("/v1/models/{name}", response_model=ModelDetail, summary="One model")
async def get_model(name: str, state: Annotated[Api, Depends(api)]) -> Response:
    return _json(detail(await run_in_threadpool(entry_of, state, name)))


@router.get(
    "/v1/models/{name}/plots/{plot:path}",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {"schema": {"type": "string"}}}}},
    summary="A plot training or evaluation drew",
)
async def get_plot(name: str, plot: str, state: Annotated[Api, Depends(api)]) -> FileResponse:
    entry = await run_in_threadpool(entry_of, state, name)
    if plot not in entry.plots():
        raise Problem(404, "not-found", f"model {name} has no plot {plot!r}")
    return FileResponse(entry.path / plot, media_type="image/png")


def train_flags(options: dict[str, Any]) -> list[str]:
    """`anomstream train` flags for the options given (None: the command's default)."""
    argv = []
    for key, value in sorted(options.items()):
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not None and value is not False:
            argv += [flag, str(value)]
    return argv


def not_busy(name: str) -> Any:
    def check(db: sqlite3.Connection) -> None:
        rows = db.execute(
            "SELECT id, options FROM jobs WHERE kind = 'train' AND status IN ('QUEUED', 'RUNNING')"
        )
        for row in rows:
            if orjson.loads(row["options"]).get("model") == name:
                raise Problem(
                    409,
                    "model-busy",
                    f"job {row['id']} is training model {name} already: wait for it or cancel it",
                )

    return check


@router.post(
    "/v1/models",
    status_code=202,
    response_model=JobView,
    summary="Train a model from a CSV upload, as a job",
    openapi_extra={"requestBody": {"required": True, "content": UPLOAD_BODY}},
)
async def train_model(
    request: Request,
    state: Annotated[Api, Depends(api)],
    name: Annotated[ModelName, Query(description="the model directory to write")],
    id: JobId | None = None,
    window: Annotated[int | None, Query(ge=2, le=4096)] = None,
    stride: Annotated[int | None, Query(ge=1, le=4096)] = None,
    kind: Annotated[Literal["linear", "dense", "conv"] | None, Query()] = None,
    latent: Annotated[int | None, Query(ge=1, le=65_536)] = None,
    train_rows: Annotated[int | None, Query(ge=1, le=10**12)] = None,
    train_fraction: Annotated[float | None, Query(ge=0.05, le=0.95)] = None,
    target_fap: Annotated[float | None, Query(ge=1e-9, le=0.5)] = None,
    epochs: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    seed: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    sources: Annotated[str | None, Query(description="glob patterns, a,b")] = None,
    search: Annotated[bool, Query(description="with labels: search the recipe")] = False,
    signals: Annotated[str | None, Query()] = None,
    time_col: Annotated[str | None, Query()] = None,
    source_col: Annotated[str | None, Query()] = None,
    label_col: Annotated[str | None, Query()] = None,
    ignore: Annotated[str | None, Query()] = None,
    sep: Annotated[Literal[",", ";"] | None, Query()] = None,
) -> Response:
    """202 Accepted: the job runs `anomstream train` with these options (see `anomstream
    train --help`); once SUCCEEDED its `links.model` is the new model."""
    flags = {
        "window": window,
        "stride": stride,
        "kind": kind,
        "latent": latent,
        "train_rows": train_rows,
        "train_fraction": train_fraction,
        "target_fap": target_fap,
        "epochs": epochs,
        "seed": seed,
        "sources": sources,
        "search": search,
        "signals": signals,
        "time_col": time_col,
        "source_col": source_col,
        "label_col": label_col,
        "ignore": ignore,
        "sep": sep,
    }
    salt = orjson.dumps({"name": name, **flags}, option=orjson.OPT_SORT_KEYS)
    upload = await spool(request, state.settings.data_dir / "uploads", salt, "csv")
    try:
        if upload.format != "csv":
            raise Problem(
                422,
                "invalid-request",
                "training reads a CSV file",
                errors=[FieldError(field="format", message="csv only")],
            )
        options = {
            "model": name,
            "out": str(state.settings.models_dir / name),
            "flags": train_flags(flags),
        }
        job = await run_in_threadpool(
            enqueue,
            state,
            id,
            "train",
            upload.digest,
            options,
            lambda d: place(upload, d),
            not_busy(name),
        )
    finally:
        upload.path.unlink(missing_ok=True)
    return accepted(job)
