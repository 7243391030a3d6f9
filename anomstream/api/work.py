"""A detection job, in a process of its own: `python -m anomstream.api.work DB JOB DIR`.

Started by `anomstream.api.runner`, one process per job (scoring is CPU bound, and a process
can be stopped at once when the job is canceled). It reads the job's input, scores it with
`anomstream detect`'s code path (`anomstream.api.scoring`), reports progress to the job store
(and stops when it reads CANCELED there), and writes `result.jsonl`, `result.csv` and
`events.jsonl` beside the input, each complete or not at all.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from anomstream.api.catalog import Catalog, ModelNotFound
from anomstream.api.inputs import jsonl_records
from anomstream.api.rules import job_rules
from anomstream.api.scoring import Detection, choose_config, detect
from anomstream.api.store import CANCELED, FAILED, SUCCEEDED, JobStore
from anomstream.csv_options import load_csv
from detectors.model_spec import ModelError
from detectors.records import Record

RESULTS = {
    "result.jsonl": "application/x-ndjson",
    "result.csv": "text/csv",
    "events.jsonl": "application/x-ndjson",
}
"""A detection job's result files and their media types."""


class Canceled(Exception):
    """The job was canceled while it ran."""


def read_input(path: Path, options: dict[str, Any]) -> list[Record]:
    """The job's records: a CSV read as `detect` reads one, or JSONL as the topic's messages."""
    if options["format"] == "csv":
        return load_csv(path, warnings=None, **options.get("reading", {})).records()
    with path.open("rb") as handle:
        return list(jsonl_records(iter(handle), options["max_signals"]))


def write_results(directory: Path, found: Detection) -> None:
    """The three result files, each written aside and moved in (complete or absent)."""

    def put(name: str, write: Any) -> None:
        part = directory / f".{name}.part"
        with part.open("w", newline="", encoding="utf-8") as handle:
            write(handle)
        os.replace(part, directory / name)

    def scores(handle: Any) -> None:
        for msg in found.messages():
            handle.write(orjson.dumps(msg).decode() + "\n")

    def events(handle: Any) -> None:
        for event in found.events():
            handle.write(orjson.dumps(event).decode() + "\n")

    def table(handle: Any) -> None:
        rows = found.rows()
        fields = list(dict.fromkeys(key for row in rows for key in row))
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)

    put("result.jsonl", scores)
    put("events.jsonl", events)
    put("result.csv", table)


def run(store: JobStore, job_id: str, directory: Path) -> dict[str, Any]:
    """Score the job's input; its summary (raises `Canceled`, or a one-line user error)."""
    job = store.get(job_id)
    if job is None:
        raise ValueError(f"job {job_id} is not in the store")
    options = job.options
    records = read_input(directory / job.input, options)
    if not records:
        raise ValueError("the input holds no records")
    store.progress(job_id, 0, len(records))
    catalog = Catalog(Path(options["models_dir"]))
    served = catalog.load(options["model"]) if options.get("model") else None
    book = None if served is not None else catalog.routing()
    config = choose_config(
        served, options.get("target_fap"), options.get("sensitivity"), options["default_fap"]
    )

    def progress(done: int) -> None:
        if store.progress(job_id, done, None) == CANCELED:
            raise Canceled

    found = detect(records, served, book, config, progress, job_rules(options))
    write_results(directory, found)
    models = sorted({r.model for r in found.scored if r.model})
    return {
        **found.summary(),
        "models": models,
        "target_fap": config.target_fap,
        "threshold": config.threshold,
        "notes": found.notes(),
    }


def main(argv: list[str]) -> int:
    """The job's end goes to the store; only a crash (our bug) exits non-zero, with its
    traceback in the job's log for the server to report."""
    database, job_id, directory = argv
    store = JobStore(Path(database))
    try:
        summary = run(store, job_id, Path(directory))
    except Canceled:
        return 0
    except (OSError, ValueError, ModelError, ModelNotFound) as exc:
        store.finish(job_id, FAILED, error=str(exc).splitlines()[0] if str(exc) else repr(exc))
        return 0
    store.finish(job_id, SUCCEEDED, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
