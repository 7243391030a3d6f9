"""Run the worker: create the topics, serve metrics, start the Faust worker until stopped."""

from __future__ import annotations

import asyncio
import gc
import logging

import faust

from streams.app import build_app
from streams.metrics import Metrics
from streams.settings import Settings
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
    # Faust runs on the loop current at construction time: create it, then reuse it for setup.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    topics = loop.run_until_complete(ensure_topics(settings, wait=settings.kafka.startup_wait))
    metrics = Metrics(sources=settings.serving.metrics_sources)
    metrics.serve(settings.serving.metrics_port)
    app = build_app(settings, topics, metrics)
    log.info(
        "anomstream worker: %s -> %s, %s (%d partitions), group %s, metrics on :%d",
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
