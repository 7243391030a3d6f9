"""The bounded job pool: at most `workers` job processes, fed from the store in order.

One thread dispatches: it starts the oldest QUEUED job when a slot is free, reaps processes
that ended, enforces the training timeout and expires old results. A detection job is
`python -m anomstream.api.work`, a training job `anomstream train` itself (the server never
imports TensorFlow). Processes rather than threads: scoring is CPU bound, and a process is
stopped at once on cancel. On start-up, a job the store still calls RUNNING lost its server:
it is marked FAILED ("server stopped") and its process, if still alive, killed; QUEUED jobs
simply run (a restart loses no job).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from anomstream.api.settings import ApiSettings
from anomstream.api.store import CANCELED, FAILED, QUEUED, RUNNING, SUCCEEDED, Job, JobStore

log = logging.getLogger("anomstream.api.jobs")

STOPPED = "server stopped"
TICK = 0.25
SWEEP_EVERY = 60.0
LOG_FILE = "log.txt"


@dataclass(slots=True)
class Running:
    job: Job
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    started: float


def last_line(path: Path) -> str:
    """The job log's last non-empty line: the one-line error of `anomstream train`."""
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    line = lines[-1].strip() if lines else ""
    return line.removeprefix("anomstream: error: ")


def kill_orphan(job: Job, directory: Path) -> None:
    """The process of a job whose server died may still run: killed if it is ours (its
    command line names the job's directory), never another process that reused the pid."""
    if not job.pid:
        return
    try:
        command = Path(f"/proc/{job.pid}/cmdline").read_bytes()
    except OSError:
        return
    if str(directory).encode() in command:
        with contextlib.suppress(OSError):
            os.kill(job.pid, signal.SIGKILL)


class Runner:
    """Dispatches the store's jobs to at most `settings.workers` processes."""

    def __init__(self, store: JobStore, settings: ApiSettings) -> None:
        self.store = store
        self.settings = settings
        self.jobs_dir = settings.data_dir / "jobs"
        self._running: dict[str, Running] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._swept = 0.0

    def directory(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def recover(self) -> None:
        """Jobs the last server left RUNNING: FAILED, their processes gone."""
        for job in self.store.running():
            kill_orphan(job, self.directory(job.id))
            self.store.finish(job.id, FAILED, error=STOPPED)
            log.warning("job %s was running when the server stopped: FAILED", job.id)

    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="anomstream-jobs", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop dispatching; running jobs are stopped and FAILED ("server stopped")."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            for run in list(self._running.values()):
                self._end_process(run)
                self.store.finish(run.job.id, FAILED, error=STOPPED)
            self._running.clear()

    def cancel(self, job_id: str) -> bool:
        """QUEUED or RUNNING -> CANCELED (its process stopped); False if it had ended."""
        if self.store.finish(job_id, CANCELED, only_from=(QUEUED, RUNNING)):
            with self._lock:
                run = self._running.pop(job_id, None)
            if run is not None:
                self._end_process(run)
                self._cleanup_training(run)
            self.wake()
            return True
        return False

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._reap()
                self._dispatch()
                if time.monotonic() - self._swept > SWEEP_EVERY:
                    self.sweep()
            except Exception:  # the pool must outlive any one job's surprise
                log.exception("job dispatcher")
            self._wake.wait(TICK)
            self._wake.clear()

    def _dispatch(self) -> None:
        while len(self._running) < self.settings.workers and not self._stop.is_set():
            job = self.store.next_queued()
            if job is None:
                return
            self._launch(job)

    def _launch(self, job: Job) -> None:
        directory = self.directory(job.id)
        handle = (directory / LOG_FILE).open("ab")
        if job.kind == "train":
            out = ["--out", job.options["out"], *job.options["flags"]]
            command = [
                sys.executable,
                "-m",
                "anomstream",
                "train",
                str(directory / job.input),
                *out,
            ]
        else:
            command = [
                sys.executable,
                "-m",
                "anomstream.api.work",
                str(self.store.path),
                job.id,
                str(directory),
            ]
        process = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        if not self.store.start(job.id, process.pid):  # canceled meanwhile
            process.kill()
            process.wait()
            handle.close()
            return
        with self._lock:
            self._running[job.id] = Running(job, process, handle, time.monotonic())
        log.info("job %s (%s) started, pid %d", job.id, job.kind, process.pid)

    def _reap(self) -> None:
        with self._lock:
            runs = list(self._running.values())
        for run in runs:
            code = run.process.poll()
            if code is None:
                too_long = time.monotonic() - run.started > self.settings.train_timeout
                if run.job.kind == "train" and too_long:
                    self._end_process(run)
                    self._cleanup_training(run)
                    limit = self.settings.train_timeout
                    self.store.finish(
                        run.job.id,
                        FAILED,
                        error=f"training ran longer than {limit:g} s (setting train_timeout)",
                    )
                    self._forget(run)
                continue
            run.log.close()
            self._forget(run)
            self._ended(run, code)

    def _forget(self, run: Running) -> None:
        with self._lock:
            self._running.pop(run.job.id, None)

    def _ended(self, run: Running, code: int) -> None:
        job = run.job
        reason = last_line(self.directory(job.id) / LOG_FILE)
        if job.kind == "train":
            if code == 0:
                self.store.finish(job.id, SUCCEEDED, self._trained(job, reason))
            else:
                self.store.finish(job.id, FAILED, error=reason or f"training exited with {code}")
                self._cleanup_training(run)
        elif code != 0:  # the job process crashed: its traceback is in the log
            self.store.finish(job.id, FAILED, error=f"job process failed ({code}): {reason}")
        log.info("job %s ended, exit code %d", job.id, code)

    def _trained(self, job: Job, line: str) -> dict[str, Any]:
        name = job.options["model"]
        return {"model": name, "message": line, "links": {"model": f"/v1/models/{name}"}}

    def _end_process(self, run: Running) -> None:
        if run.process.poll() is None:
            run.process.terminate()
            try:
                run.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                run.process.kill()
                run.process.wait()
        run.log.close()

    def _cleanup_training(self, run: Running) -> None:
        """A stopped `train` leaves its staging folder (hidden, never served): removed."""
        if run.job.kind != "train":
            return
        stage = Path(run.job.options["out"])
        shutil.rmtree(stage.parent / f".{stage.name}.staging-{run.process.pid}", True)

    def sweep(self) -> None:
        """Results of jobs finished longer ago than the retention: deleted (the job stays,
        `expired`)."""
        self._swept = time.monotonic()
        for job_id in self.store.expire(time.time() - self.settings.retention_seconds):
            shutil.rmtree(self.directory(job_id), ignore_errors=True)
            log.info("job %s expired: its results are deleted", job_id)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {RUNNING: len(self._running)}
