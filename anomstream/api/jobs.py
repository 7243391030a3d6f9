"""`/v1/jobs`: files scored as jobs. Submit (202 + Location), poll, fetch results, cancel.

A client may name its job (`?id=`): the same id with the same body and options is the same
job (a retried POST never runs twice), with another body a 409. Inputs are CSV (read as
`anomstream detect` reads one, with its column options) or JSONL (the topic's messages, one a
line), uploaded as multipart or as the raw body, or the inline JSON of `POST /v1/detect`.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, ValidationError
from starlette.responses import FileResponse, Response

from anomstream.api.context import Api, api
from anomstream.api.detect import load_model
from anomstream.api.inputs import DetectRequest, ModelName, to_records
from anomstream.api.problems import FieldError, Problem, validation_problem
from anomstream.api.rules import call_rules, entries
from anomstream.api.store import ACTIVE, SUCCEEDED, Job
from anomstream.api.uploads import UPLOAD_BODY, Upload, media_type, place, spool
from anomstream.api.work import RESULTS
from detectors.csvdata import CsvError, layout
from detectors.rules import RuleBook

router = APIRouter(tags=["jobs"])

JobId = Annotated[
    str,
    Query(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="your id for the job: the same id and body again return the same job",
    ),
]
Status = Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED"]


class Progress(BaseModel):
    done: int = Field(description="records scored so far")
    total: int | None = Field(description="records in the input, once read")
    fraction: float | None


class JobView(BaseModel):
    id: str
    kind: Literal["detect", "train"]
    status: Status
    created: str
    started: str | None
    finished: str | None
    progress: Progress
    summary: dict[str, Any] | None = Field(description="the job's figures, once it SUCCEEDED")
    error: str | None = Field(description="why it FAILED")
    expired: bool = Field(description="its results were deleted (setting retention_hours)")
    links: dict[str, str] = Field(description="this job, and its results once it SUCCEEDED")


def _time(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def view(job: Job) -> dict[str, Any]:
    links = {"self": f"/v1/jobs/{job.id}"}
    if job.status == SUCCEEDED and not job.expired:
        if job.kind == "detect":
            links.update({name: f"/v1/jobs/{job.id}/{name}" for name in RESULTS})
        else:
            links["model"] = f"/v1/models/{job.options['model']}"
    total = job.total
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "created": _time(job.created),
        "started": _time(job.started),
        "finished": _time(job.finished),
        "progress": {
            "done": job.done,
            "total": total,
            "fraction": (job.done / total) if total else None,
        },
        "summary": job.summary,
        "error": job.error,
        "expired": job.expired,
        "links": links,
    }


def accepted(job: Job) -> Response:
    return Response(
        orjson.dumps(view(job)),
        status_code=202,
        media_type="application/json",
        headers={"Location": f"/v1/jobs/{job.id}"},
    )


def enqueue(
    state: Api,
    job_id: str | None,
    kind: str,
    digest: str,
    options: dict[str, Any],
    stage: Callable[[Path], str],
    check: Callable[[sqlite3.Connection], None] = lambda db: None,
) -> Job:
    """Insert the job (or find the same one); `stage` puts its input in its directory."""
    store, settings = state.store, state.settings
    job_id = job_id or uuid.uuid4().hex
    with store.transaction() as db:
        existing = store.get(job_id, db)
        if existing is not None:
            if existing.digest != digest or existing.kind != kind:
                raise Problem(
                    409,
                    "id-conflict",
                    f"job {job_id} exists with another body or options: choose another id",
                    errors=[FieldError(field="query.id", message="taken")],
                )
            return existing
        if len(store.active(db)) >= settings.max_jobs:
            raise Problem(
                429,
                "too-many-jobs",
                f"{settings.max_jobs} jobs are queued or running (setting max_jobs): retry later",
                limit=("max_jobs", settings.max_jobs),
                headers={"Retry-After": "10"},
            )
        check(db)
        directory = state.runner.directory(job_id)
        shutil.rmtree(directory, ignore_errors=True)  # a leftover of a submit that died
        name = stage(directory)
        store.insert(db, job_id, kind, digest, options, name)
        job = store.get(job_id, db)
    assert job is not None
    state.runner.wake()
    return job


def check_csv(upload: Upload, reading: dict[str, Any]) -> None:
    """A CSV's header, checked before the job is queued: a wrong column fails the POST."""
    try:
        found = layout(
            upload.path,
            time_col=reading.get("time_col"),
            source_col=reading.get("source_col"),
            label_col=reading.get("label_col"),
            ignore=tuple(n.strip() for n in (reading.get("ignore") or "").split(",") if n),
            sep=reading.get("sep"),
        )
    except CsvError as exc:
        raise Problem(
            422, "invalid-csv", str(exc).replace(str(upload.path), "the upload")
        ) from None
    wanted = [n.strip() for n in (reading.get("signals") or "").split(",") if n.strip()]
    unknown = [n for n in wanted if n not in found.signals]
    if unknown:
        raise Problem(
            422,
            "invalid-csv",
            f"signal column(s) {', '.join(unknown)} not in the upload's header",
            errors=[FieldError(field="query.signals", message="not in the header")],
        )


async def inline_job(
    request: Request, state: Api, job_id: str | None, query: dict[str, Any]
) -> Response:
    """The inline JSON of `POST /v1/detect`, as a job (no `max_rows`: the upload limit)."""
    raw = await request.body()
    try:
        body = DetectRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise validation_problem(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from None
    given = [k for k, v in query.items() if v is not None]
    if given:
        raise Problem(
            422, "invalid-request", f"inline JSON carries its options in the body, not ?{given[0]}"
        )
    records = to_records(body, sys.maxsize, state.settings.max_signals)
    rules = call_rules(state.rules, body.rules)
    load_model(state.catalog, body.model)
    lines = b"".join(
        orjson.dumps({"source": r.source, "ts": r.ts_text, "signals": r.signals}) + b"\n"
        for r in records
    )
    options = detect_options(state, body.model, body.target_fap, body.sensitivity, rules)
    options["format"] = "jsonl"
    digest = _digest(b"json", raw)

    def stage(directory: Path) -> str:
        directory.mkdir(parents=True)
        (directory / "input.jsonl").write_bytes(lines)
        return "input.jsonl"

    job = await run_in_threadpool(enqueue, state, job_id, "detect", digest, options, stage)
    return accepted(job)


def _digest(*parts: bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "big") + part)
    return hasher.hexdigest()


def detect_options(
    state: Api,
    model: str | None,
    target_fap: float | None,
    sensitivity: float | None,
    rules: RuleBook | None = None,
) -> dict[str, Any]:
    """A job's options; `rules` (default: the server's) kept as entries, so the job judges
    the rules it was accepted with."""
    settings = state.settings
    if rules is None:
        rules = state.rules
    options: dict[str, Any] = {
        "model": model,
        "target_fap": target_fap,
        "sensitivity": sensitivity,
        "default_fap": settings.target_fap,
        "models_dir": str(settings.models_dir),
        "max_signals": settings.max_signals,
    }
    if rules is not None:  # absent otherwise: the options (and digests) of jobs before rules
        options["rules"] = entries(rules.rules)
    return options


@router.post(
    "/v1/jobs",
    status_code=202,
    response_model=JobView,
    summary="Score a file (CSV or JSONL upload, or inline JSON) as a job",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/DetectRequest"}},
                **UPLOAD_BODY,
            },
        }
    },
)
async def submit(
    request: Request,
    state: Annotated[Api, Depends(api)],
    id: JobId | None = None,
    model: Annotated[ModelName | None, Query()] = None,
    target_fap: Annotated[float | None, Query(gt=0.0, lt=0.5)] = None,
    sensitivity: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    format: Annotated[Literal["csv", "jsonl"] | None, Query()] = None,
    signals: Annotated[str | None, Query(description="CSV: signal columns, a,b,c")] = None,
    time_col: Annotated[str | None, Query(description="CSV: the timestamp column")] = None,
    source_col: Annotated[str | None, Query(description="CSV: the source column")] = None,
    ignore: Annotated[str | None, Query(description="CSV: columns that are not signals")] = None,
    sep: Annotated[Literal[",", ";"] | None, Query(description="CSV: the separator")] = None,
) -> Response:
    """202 Accepted with `Location: /v1/jobs/{id}`; poll it until SUCCEEDED, then fetch the
    `links`."""
    scoring = {"model": model, "target_fap": target_fap, "sensitivity": sensitivity}
    reading = {
        "signals": signals,
        "time_col": time_col,
        "source_col": source_col,
        "ignore": ignore,
        "sep": sep,
    }
    if media_type(request) == "application/json":
        return await inline_job(request, state, id, {**scoring, **reading, "format": format})
    if target_fap is not None and sensitivity is not None:
        raise Problem(422, "invalid-request", "give target_fap or sensitivity, not both")
    load_model(state.catalog, model)
    options = detect_options(state, model, target_fap, sensitivity)
    options["reading"] = {k: v for k, v in reading.items() if v is not None}
    salt = orjson.dumps(options, option=orjson.OPT_SORT_KEYS)
    upload = await spool(request, state.settings.data_dir / "uploads", salt, format)
    try:
        options["format"] = upload.format
        if upload.format == "csv":
            await run_in_threadpool(check_csv, upload, options["reading"])
        elif options["reading"]:
            raise Problem(422, "invalid-request", "the CSV options apply to CSV uploads only")

        job = await run_in_threadpool(
            enqueue, state, id, "detect", upload.digest, options, lambda d: place(upload, d)
        )
    finally:
        upload.path.unlink(missing_ok=True)
    return accepted(job)


def found(state: Api, job_id: str) -> Job:
    job = state.store.get(job_id)
    if job is None:
        raise Problem(404, "not-found", f"no job {job_id!r}")
    return job


@router.get("/v1/jobs/{job_id}", response_model=JobView, summary="A job's status and links")
async def get_job(job_id: str, state: Annotated[Api, Depends(api)]) -> Response:
    job = await run_in_threadpool(found, state, job_id)
    return Response(orjson.dumps(view(job)), media_type="application/json")


@router.delete("/v1/jobs/{job_id}", response_model=JobView, summary="Cancel a job")
async def cancel_job(job_id: str, state: Annotated[Api, Depends(api)]) -> Response:
    """QUEUED or RUNNING -> CANCELED (a running job's process is stopped)."""
    job = await run_in_threadpool(found, state, job_id)
    if job.status not in ACTIVE or not await run_in_threadpool(state.runner.cancel, job_id):
        job = await run_in_threadpool(found, state, job_id)
        raise Problem(409, "job-ended", f"job {job_id} has ended already ({job.status})")
    job = await run_in_threadpool(found, state, job_id)
    return Response(orjson.dumps(view(job)), media_type="application/json")


def result_file(state: Api, job_id: str, name: str) -> Path:
    job = found(state, job_id)
    if job.kind != "detect":
        raise Problem(404, "not-found", f"job {job_id} is a {job.kind} job: it has no {name}")
    if job.expired:
        raise Problem(410, "expired", f"job {job_id}'s results expired (setting retention_hours)")
    if job.status != SUCCEEDED:
        raise Problem(409, "no-results", f"job {job_id} is {job.status}: no results (yet)")
    return state.runner.directory(job_id) / name


def _result_route(name: str) -> None:
    kind = RESULTS[name]

    @router.get(
        f"/v1/jobs/{{job_id}}/{name}",
        response_class=FileResponse,
        responses={200: {"content": {kind: {"schema": {"type": "string"}}}}},
        summary=f"A finished job's {name}",
    )
    async def get_result(job_id: str, state: Annotated[Api, Depends(api)]) -> FileResponse:
        path = await run_in_threadpool(result_file, state, job_id, name)
        return FileResponse(path, media_type=kind, filename=f"{job_id}.{name}")

    get_result.__name__ = f"get_{name.replace('.', '_')}"


for _name in RESULTS:
    _result_route(_name)
