"""The job pool: bounded, and what a restart does with the jobs the last server left."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from anomstream.api.runner import STOPPED, Runner
from anomstream.api.settings import ApiSettings
from anomstream.api.store import FAILED, QUEUED, RUNNING, JobStore


def test_a_restart_fails_running_jobs_kills_their_orphans_and_keeps_the_queue(
    tmp_path: Path,
) -> None:
    settings = ApiSettings(data_dir=tmp_path, models_dir=tmp_path)
    store = JobStore(settings.database)
    runner = Runner(store, settings)
    orphan_dir = runner.directory("left-running")
    orphan_dir.mkdir(parents=True)
    # a job process whose server died: still running, its command line names its directory
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", str(orphan_dir)]
    )
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with store.transaction() as db:
            for job_id in ("left-running", "reused-pid", "waiting"):
                store.insert(db, job_id, "detect", "d", {}, "input.csv")
        store.start("left-running", orphan.pid)
        store.start("reused-pid", stranger.pid)  # its pid now belongs to someone else

        Runner(store, settings).recover()

        for job_id in ("left-running", "reused-pid"):
            job = store.get(job_id)
            assert job is not None and (job.status, job.error) == (FAILED, STOPPED)
        waiting = store.get("waiting")
        assert waiting is not None and waiting.status == QUEUED  # runs after the restart
        assert orphan.wait(timeout=10) == -9
        time.sleep(0.2)
        assert stranger.poll() is None  # never another process
    finally:
        for process in (orphan, stranger):
            process.kill()
            process.wait()


def test_no_more_than_workers_jobs_run_at_once(tmp_path: Path) -> None:
    settings = ApiSettings(data_dir=tmp_path, models_dir=tmp_path, workers=2)
    store = JobStore(settings.database)
    runner = Runner(store, settings)
    with store.transaction() as db:
        for i in range(4):
            store.insert(db, f"j{i}", "detect", "d", {"format": "jsonl"}, "input.jsonl")
    for i in range(4):  # (no input: each process would fail, but not before the check)
        runner.directory(f"j{i}").mkdir(parents=True)
    runner._dispatch()
    try:
        assert [j.status for j in map(store.get, ["j0", "j1", "j2", "j3"]) if j] == [
            RUNNING,
            RUNNING,
            QUEUED,
            QUEUED,
        ]
    finally:
        runner.stop()
    stopped = store.get("j0")
    assert stopped is not None and stopped.status == FAILED
