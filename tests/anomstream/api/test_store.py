"""The job store: WAL, atomic check-then-insert, and endings that never overwrite a cancel."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from anomstream.api.store import CANCELED, FAILED, QUEUED, RUNNING, SUCCEEDED, JobStore


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(tmp_path / "jobs.sqlite3")


def add(store: JobStore, job_id: str) -> None:
    with store.transaction() as db:
        store.insert(db, job_id, "detect", "d", {"format": "csv"}, "input.csv")


def test_the_database_is_in_wal_mode(store: JobStore) -> None:
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_jobs_run_in_order_and_a_cancel_is_final(store: JobStore) -> None:
    add(store, "b")
    add(store, "a")
    first = store.next_queued()
    assert first is not None and first.id == "b"  # by creation time, not by id
    assert store.start("b", 123)
    assert not store.start("b", 456)  # no longer queued
    assert store.finish("b", CANCELED, only_from=(QUEUED, RUNNING))
    assert not store.finish("b", SUCCEEDED)  # the process finishing late changes nothing
    job = store.get("b")
    assert job is not None and job.status == CANCELED and job.pid is None
    assert store.progress("b", 10, 20) == CANCELED  # what tells a running process to stop


def test_a_failed_transaction_leaves_nothing(store: JobStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as db:
        store.insert(db, "x", "detect", "d", {}, "input.csv")
        raise RuntimeError
    assert store.get("x") is None


def test_finished_jobs_expire_and_active_ones_do_not(store: JobStore) -> None:
    add(store, "done")
    add(store, "waiting")
    store.start("done", 1)
    store.finish("done", FAILED, error="x")
    assert store.expire(before=0.0) == []
    assert store.expire(before=1e12) == ["done"]
    assert store.expire(before=1e12) == []  # once
    assert store.counts() == {("detect", FAILED): 1, ("detect", QUEUED): 1}
