"""Jobs in an embedded SQLite database (stdlib `sqlite3`, WAL) beside their files.

The server and the job processes share it: the server inserts, dispatches and cancels; a
job process reports its progress and its end. Every status change out of RUNNING is
conditional (`WHERE status = 'RUNNING'`), so a job canceled or failed by the server stays so
whatever its process writes afterwards. A connection per call: calls are few and short, and
threads and processes then never share one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED = (
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "CANCELED",
)
ACTIVE = (QUEUED, RUNNING)
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    digest TEXT NOT NULL,
    options TEXT NOT NULL,
    input TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER,
    summary TEXT,
    error TEXT,
    pid INTEGER,
    expired INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created);
"""


@dataclass(frozen=True, slots=True)
class Job:
    """One row of the store."""

    id: str
    kind: str
    status: str
    digest: str
    options: dict[str, Any]
    input: str
    """The input file's name in the job's directory."""
    created: float
    started: float | None
    finished: float | None
    done: int
    total: int | None
    summary: dict[str, Any] | None
    error: str | None
    pid: int | None
    expired: bool


class JobConflict(Exception):
    """The id is taken by a job with another body."""


class TooManyJobs(Exception):
    """`max_jobs` jobs are queued or running already."""


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        digest=row["digest"],
        options=orjson.loads(row["options"]),
        input=row["input"],
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
        done=row["done"],
        total=row["total"],
        summary=None if row["summary"] is None else orjson.loads(row["summary"]),
        error=row["error"],
        pid=row["pid"],
        expired=bool(row["expired"]),
    )


class JobStore:
    """The `jobs` table of the database at `path` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA busy_timeout = 30000")
            yield db
        finally:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE): check-then-insert is atomic."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def get(self, job_id: str, db: sqlite3.Connection | None = None) -> Job | None:
        if db is not None:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return None if row is None else _job(row)
        with self._connect() as conn:
            return self.get(job_id, conn)

    def insert(
        self,
        db: sqlite3.Connection,
        job_id: str,
        kind: str,
        digest: str,
        options: dict[str, Any],
        input_name: str,
        total: int | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO jobs (id, kind, status, digest, options, input, created, total)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, kind, QUEUED, digest, orjson.dumps(options), input_name, time.time(), total),
        )

    def active(self, db: sqlite3.Connection, kind: str | None = None) -> list[Job]:
        sql = "SELECT * FROM jobs WHERE status IN (?, ?)"
        args: tuple[str, ...] = ACTIVE
        if kind is not None:
            sql, args = sql + " AND kind = ?", (*ACTIVE, kind)
        return [_job(r) for r in db.execute(sql + " ORDER BY created", args)]

    def next_queued(self) -> Job | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM jobs WHERE status = ? ORDER BY created, id LIMIT 1", (QUEUED,)
            ).fetchone()
        return None if row is None else _job(row)

    def start(self, job_id: str, pid: int) -> bool:
        """QUEUED -> RUNNING with the process's pid; False if it is no longer queued."""
        with self._connect() as db:
            cur = db.execute(
                "UPDATE jobs SET status = ?, started = ?, pid = ? WHERE id = ? AND status = ?",
                (RUNNING, time.time(), pid, job_id, QUEUED),
            )
            return cur.rowcount == 1

    def progress(self, job_id: str, done: int, total: int | None) -> str | None:
        """Record progress; the job's status (CANCELED tells the process to stop)."""
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET done = ?, total = COALESCE(?, total) WHERE id = ?",
                (done, total, job_id),
            )
            row = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else str(row["status"])

    def finish(
        self,
        job_id: str,
        status: str,
        summary: dict[str, Any] | None = None,
        error: str | None = None,
        only_from: tuple[str, ...] = (RUNNING,),
    ) -> bool:
        """End a job (if it is still in one of `only_from`): False when it had ended already."""
        marks = ",".join("?" * len(only_from))
        with self._connect() as db:
            cur = db.execute(
                f"UPDATE jobs SET status = ?, finished = ?, summary = ?, error = ?, pid = NULL"
                f" WHERE id = ? AND status IN ({marks})",
                (
                    status,
                    time.time(),
                    None if summary is None else orjson.dumps(summary),
                    error,
                    job_id,
                    *only_from,
                ),
            )
            return cur.rowcount == 1

    def running(self) -> list[Job]:
        with self._connect() as db:
            return [_job(r) for r in db.execute("SELECT * FROM jobs WHERE status = ?", (RUNNING,))]

    def expire(self, before: float) -> list[str]:
        """Mark jobs that finished before `before` expired; their ids (to delete the files)."""
        with self._connect() as db:
            ids = [
                str(r["id"])
                for r in db.execute(
                    "SELECT id FROM jobs WHERE finished < ? AND expired = 0"
                    " AND status NOT IN (?, ?)",
                    (before, *ACTIVE),
                )
            ]
            db.executemany("UPDATE jobs SET expired = 1 WHERE id = ?", [(i,) for i in ids])
        return ids

    def counts(self) -> dict[tuple[str, str], int]:
        with self._connect() as db:
            rows = db.execute("SELECT kind, status, COUNT(*) AS n FROM jobs GROUP BY kind, status")
            return {(str(r["kind"]), str(r["status"])): int(r["n"]) for r in rows}
