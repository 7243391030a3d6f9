"""Run the worker: create the topics, serve metrics, start the Faust worker until stopped."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import logging
from pathlib import Path
from typing import IO

import faust

from detectors.rules import load_rules
from streams.app import build_app
from streams.clients import settle_idempotence
from streams.metrics import Metrics
from streams.security import metrics_guard
from streams.settings import Settings, SettingsError
from streams.topics import ensure_topics

log = logging.getLogger(__name__)


def run_worker(settings: Settings) -> None:
    """Blocks until the worker stops (SIGTERM/SIGINT). Raises `BrokerUnavailable` early."""
    logging.basicConfig(
        level=settings.serving.log_level.upper()
        .replace("WARN", "WARNING")
        .replace("CRIT", "CRITICAL"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    held = lock_data_dir(settings.state.data_dir)  # noqa: F841 - held until the process ends
    if settings.serving.rules_file is not None:
        load_rules(settings.serving.rules_file)  # a bad rule stops here, in one line
    # Faust runs on the loop current at construction time: create it, then reuse it for setup.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    topics = loop.run_until_complete(ensure_topics(settings, wait=settings.kafka.startup_wait))
    # a broker that refuses idempotent producers: fall back or stop here, in one line
    settings, note = loop.run_until_complete(settle_idempotence(settings))
    metrics = Metrics(sources=settings.serving.metrics_sources)
    metrics.serve(
        settings.serving.metrics_port,
        settings.security.metrics_host,
        metrics_guard(settings.security),
    )
    app = build_app(settings, topics, metrics, notes=[note] if note else [])
    log.info(
        "anomstream worker: %s -> %s, %s (%d partitions), group %s, metrics and /status on :%d",
        topics.signals,
        topics.scores,
        topics.anomalies,
        topics.partitions,
        settings.kafka.app_id,
        settings.serving.metrics_port,
    )
    worker = faust.Worker(app, loglevel=settings.serving.log_level, quiet=True, loop=loop)
    # At log level warn and above Faust's terminal spinner sets the root logger to DEBUG, so
    # aiokafka builds a debug record for every message it sends (a few per cent of the worker's
    # CPU: docs/benchmarks.md). No spinner: the root logger keeps the level asked for.
    worker.spinner = None
    tune_gc()
    worker.execute_from_commandline()


def lock_data_dir(path: Path) -> IO[str]:
    """Take the data dir for this worker (held while the returned file is open).

    Two workers on one data dir would share Faust's files and, with the default static group
    membership (`group_instance_id = auto`, derived from the data dir), the same member id, so
    each would fence the other out of the group in a loop: stop the second one with one line."""
    path.mkdir(parents=True, exist_ok=True)
    handle = (path / "worker.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise SettingsError(
            f"another worker uses the data dir {path.resolve()}: give each worker its own "
            "(ANOMSTREAM_DATA_DIR)"
        ) from None
    return handle


GC_THRESHOLDS = (50_000, 50, 10)
"""Python's default (700, 10, 10) runs the young collection every 700 container allocations;
scoring allocates many short-lived objects (dicts of messages, lists) and collections took
a measurable share of the time (bench/hotpath.py; figures in docs/benchmarks.md)."""


def tune_gc() -> None:
    """Freeze what start-up built (modules, app, models) out of the cyclic collector, and
    collect the young generation every 50,000 allocations instead of 700."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
