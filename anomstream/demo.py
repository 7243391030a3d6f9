"""`anomstream demo`: the whole product on one machine in a minute.

Starts the embedded broker on a free port, creates the topics, starts a worker process, and
streams a synthetic plant with labelled anomalies into it while a live view shows rates and the
latest events. At the end it prints what happened: records in, scores out (they must be equal),
dead letters, events, which injected anomalies were caught, false alarms, throughput, latency.
Everything it started is stopped again, also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from anomstream.demo_model import demo_model
from anomstream.plant import Plant, iso, judge
from anomstream.tail import format_event
from harness.brokers import TansuBroker, free_port
from harness.workerproc import WorkerProcess, worker_env
from streams.clients import start_consumer, start_producer
from streams.codec import Limits, to_record
from streams.formats import decoder_for
from streams.formats.writers import write
from streams.settings import Settings, load_settings
from streams.topics import ensure_topics

MALFORMED = (
    b'{"source": "pump-1", "ts": ',  # truncated JSON
    b'{"source": "pump-2", "ts": "2026-11-24T10:00:00Z", "signals": {"temp": "hot"}}',
    b'{"source": "pump-3", "signals": {"temp": 70.1}}',  # no ts
)


@dataclass
class Summary:
    """What the demo measured; printed at the end and written as JSON with `--summary-json`."""

    duration_s: float
    records_produced: int = 0
    scores_received: int = 0
    duplicate_scores: int = 0
    malformed_sent: int = 0
    dead_letters: int = 0
    events: int = 0
    injected: list[dict[str, Any]] = field(default_factory=list)
    detected: int = 0
    false_alarm_events: int = 0
    false_alarm_episodes: int = 0
    produce_rate: float = 0.0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    worker_ready_s: float = 0.0
    interrupted: bool = False
    model: str | None = None
    """Label of the autoencoder the worker served (None: univariate suite only)."""
    pids: list[int] = field(default_factory=list)
    """Broker and worker processes it started (all stopped when it returns)."""


@dataclass
class _Live:
    produced: int = 0
    scores: int = 0
    dead: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)
    duplicates: int = 0
    malformed: int = 0
    model: str | None = None


async def run_demo(
    summary: Summary,
    rate: float = 300.0,
    sources: int = 3,
    seed: int = 7,
    console: Console | None = None,
    live: bool = True,
    workdir: Path | None = None,
    model_cache: Path | None = None,
    format: str = "json",
) -> None:
    """Run the demo, filling `summary` as it goes (so Ctrl-C still leaves one to print);
    `format` is what the plant writes and the worker reads (`ANOMSTREAM_INPUT_FORMAT`)."""
    console = console or Console()
    plant = Plant(sources=sources, rate=rate, duration=summary.duration_s, seed=seed)
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="anomstream-demo-"))
            )
        models = None if model_cache is None else demo_model(model_cache, seed, console)
        console.print(f"[dim]starting the embedded broker (Tansu) in {workdir}[/]")
        broker = stack.enter_context(TansuBroker(workdir / "broker"))
        env = worker_env(
            broker.bootstrap,
            free_port(),
            workdir / "data",
            app_id="anomstream-demo",
            idempotence=False,
            log_level="warn",
            models_dir=str(models if models is not None else workdir / "no-models"),
            input_format=format,
        )
        settings = load_settings(environ=env)
        topics = await ensure_topics(settings, wait=30)
        worker = stack.enter_context(WorkerProcess(env, workdir))
        summary.pids = [pid for pid in (broker.pid, worker.pid) if pid is not None]
        console.print(
            f"[dim]broker {broker.bootstrap}; worker pid {worker.pid}; waiting for it to join[/]"
        )
        summary.worker_ready_s = await asyncio.to_thread(worker.wait_ready, 90.0)
        console.print(
            f"[green]worker ready[/] in {summary.worker_ready_s:.1f} s; streaming "
            f"{rate:.0f} records/s from {sources} sources for {plant.duration:.0f} s"
        )
        state = _Live()
        sent_at: dict[tuple[str, str], float] = {}
        consumer = await start_consumer(
            settings,
            [topics.scores, topics.anomalies, topics.dlq],
            from_beginning=True,
            fetch_max_wait_ms=50,
        )
        reader = asyncio.create_task(
            _consume(consumer, topics.scores, topics.anomalies, state, sent_at)
        )
        producer = await start_producer(settings)
        started = time.time()
        try:
            with Live(
                console=console, refresh_per_second=4, transient=True, auto_refresh=live
            ) as view:
                ticker = (
                    asyncio.create_task(_refresh(view, state, plant, started)) if live else None
                )
                try:
                    await _produce(producer, plant, topics.signals, started, state, sent_at, format)
                    await _drain(state, timeout=30.0)
                except asyncio.CancelledError:
                    summary.interrupted = True
                finally:
                    if ticker is not None:
                        ticker.cancel()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            await producer.stop()
            await consumer.stop()
        _fill(summary, plant, state, started, time.time() - started)


def encode(source: str, ts_text: str, signals: dict[str, Any], format: str) -> tuple[bytes, str]:
    """A plant record as a message in the input `format`, and the `ts` its score will carry
    (line protocol and Telegraf carry numbers: read back as the worker reads them)."""
    record = {"source": source, "ts": ts_text, "signals": signals}
    if format == "json":
        return orjson.dumps(record), ts_text
    value = write(to_record(record, None, Limits()), format)
    if value is None:
        raise ValueError(f"a record of {source} has no value to write")
    (back,), _ = decoder_for(format)(value, None, Limits(), None)
    return value, back.ts_text


async def _produce(
    producer: Any,
    plant: Plant,
    topic: str,
    started: float,
    state: _Live,
    sent_at: dict[tuple[str, str], float] | None,
    format: str = "json",
) -> None:
    rows = plant.generate(started)
    bad_at = {len(rows) * (i + 1) // (len(MALFORMED) + 1): bad for i, bad in enumerate(MALFORMED)}
    pending = []
    for k, (ts, source, signals) in enumerate(rows):
        ahead = ts - time.time()
        if ahead > 0.002:
            await asyncio.sleep(ahead)
        value, ts_text = encode(source, iso(ts), signals, format)
        if sent_at is not None:
            sent_at[(source, ts_text)] = time.time()
        pending.append(await producer.send(topic, value, key=source.encode()))
        state.produced += 1
        if k in bad_at:
            pending.append(await producer.send(topic, bad_at[k], key=b"demo-malformed"))
            state.malformed += 1
        if len(pending) > 1000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)


async def _consume(
    consumer: Any,
    scores: str,
    anomalies: str,
    state: _Live,
    sent_at: dict[tuple[str, str], float],
) -> None:
    while True:
        batch = await consumer.getmany(timeout_ms=200)
        now = time.time()
        for tp, messages in batch.items():
            for m in messages:
                if tp.topic == scores:
                    msg = orjson.loads(m.value)
                    key = (msg["source"], msg["ts"])
                    if key in state.seen:
                        state.duplicates += 1
                        continue
                    state.seen.add(key)
                    state.scores += 1
                    state.model = msg.get("model") or state.model
                    if key in sent_at:
                        state.latencies.append(now - sent_at[key])
                elif tp.topic == anomalies:
                    state.events.append(orjson.loads(m.value))
                else:
                    state.dead += 1


async def _drain(state: _Live, timeout: float) -> None:
    """Wait until every record produced has its score (or the timeout)."""
    deadline = time.monotonic() + timeout
    while (
        state.scores < state.produced or state.dead < len(MALFORMED)
    ) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


async def _refresh(view: Live, state: _Live, plant: Plant, started: float) -> None:
    while True:
        view.update(_render(state, plant, started))
        await asyncio.sleep(0.25)


def _render(state: _Live, plant: Plant, started: float) -> Group:
    elapsed = max(time.time() - started, 1e-9)
    table = Table.grid(padding=(0, 3))
    lat = np.percentile(state.latencies[-2000:], 50) * 1e3 if state.latencies else float("nan")
    table.add_row(
        f"[bold]{elapsed:5.1f}[/]/{plant.duration:.0f} s",
        f"records [bold]{state.produced}[/] ({state.produced / elapsed:.0f}/s)",
        f"scores [bold]{state.scores}[/]",
        f"events [bold red]{len(state.events)}[/]",
        f"dead letters [bold]{state.dead}[/]",
        f"latency p50 [bold]{lat:.0f}[/] ms",
    )
    events = Table.grid()
    for event in state.events[-8:]:
        events.add_row(format_event(event))
    if not state.events:
        events.add_row(Text("no anomaly yet", style="dim"))
    return Group(
        Panel(table, title="anomstream demo"), Panel(events, title="latest anomaly events")
    )


def _fill(summary: Summary, plant: Plant, state: _Live, started: float, elapsed: float) -> None:
    summary.records_produced = state.produced
    summary.scores_received = state.scores
    summary.duplicate_scores = state.duplicates
    summary.dead_letters = state.dead
    summary.malformed_sent = state.malformed
    summary.events = len(state.events)
    summary.model = state.model
    summary.produce_rate = state.produced / max(min(elapsed, plant.duration), 1e-9)
    if state.latencies:
        summary.latency_p50_ms = float(np.percentile(state.latencies, 50) * 1e3)
        summary.latency_p99_ms = float(np.percentile(state.latencies, 99) * 1e3)
    events = [
        (e["source"], _epoch(e["ts"]), (e.get("episode") or {}).get("id")) for e in state.events
    ]
    verdict = judge(plant.schedule(), events, started)
    for inj, delay in verdict.detected.items():
        by = _found_by(inj, state.events, started) if delay is not None else []
        summary.injected.append(
            {**asdict(inj), "detected": delay is not None, "delay_s": delay, "by": by}
        )
    summary.detected = sum(1 for d in verdict.detected.values() if d is not None)
    summary.false_alarm_events = verdict.false_alarms
    summary.false_alarm_episodes = verdict.false_episodes


def _found_by(inj: Any, events: list[dict[str, Any]], started: float) -> list[str]:
    """What fired in the first event inside an injection: `signal/kind` or `autoencoder`."""
    for event in events:
        t = _epoch(event["ts"]) - started
        if event["source"] == inj.source and inj.start - 0.05 <= t <= inj.end + 3.0:
            return list(event.get("detectors", []))[:3]
    return []


def _epoch(ts_text: str) -> float:
    from detectors.timestamps import parse_ts

    return parse_ts(ts_text)[0]


def print_summary(summary: Summary, console: Console) -> None:
    table = Table(title="anomstream demo summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    same = summary.scores_received == summary.records_produced
    table.add_row("records produced", str(summary.records_produced))
    table.add_row(
        "scores received",
        f"{summary.scores_received} "
        + ("[green](= records)[/]" if same else "[red](!= records)[/]"),
    )
    table.add_row("duplicate scores", str(summary.duplicate_scores))
    table.add_row(
        "dead letters", f"{summary.dead_letters} (of {summary.malformed_sent} malformed sent)"
    )
    table.add_row("anomaly events", str(summary.events))
    for inj in summary.injected:
        found = (
            f"[green]detected[/] after {inj['delay_s']:.2f} s by {', '.join(inj['by']) or '?'}"
            if inj["detected"]
            else "[red]missed[/]"
        )
        table.add_row(
            f"  {inj['kind']}", f"{inj['source']}/{inj['signal']} at {inj['start']:.1f} s: {found}"
        )
    table.add_row("injected kinds detected", f"{summary.detected} of {len(summary.injected)}")
    table.add_row(
        "false alarms",
        f"{summary.false_alarm_events} events in {summary.false_alarm_episodes} episodes",
    )
    table.add_row("throughput", f"{summary.produce_rate:.0f} records/s")
    if summary.latency_p50_ms is not None and summary.latency_p99_ms is not None:
        table.add_row(
            "record-to-score latency",
            f"p50 {summary.latency_p50_ms:.0f} ms, p99 {summary.latency_p99_ms:.0f} ms",
        )
    table.add_row("worker ready after", f"{summary.worker_ready_s:.1f} s")
    if summary.interrupted:
        table.add_row("interrupted", "yes (Ctrl-C)")
    if summary.model:
        table.add_row("autoencoder", summary.model)
    console.print(table)


def summary_json(summary: Summary) -> bytes:
    return orjson.dumps(asdict(summary), option=orjson.OPT_INDENT_2)


async def stream_plant(
    settings: Settings,
    rate: float,
    sources: int,
    cycle: float,
    cycles: int,
    seed: int,
    console: Console,
) -> int:
    """`anomstream plant`: the demo's synthetic plant into any broker, `cycles` times (0 = forever).

    Each cycle is a fresh stretch of plant data of `cycle` seconds, anomalies and three malformed
    messages included, stamped with the current time.
    """
    producer = await start_producer(settings)
    state = _Live()
    done = 0
    try:
        while cycles == 0 or done < cycles:
            plant = Plant(sources=sources, rate=rate, duration=cycle, seed=seed + done)
            started = time.time()
            for inj in plant.schedule():
                console.print(
                    f"[dim]cycle {done + 1}: {inj.kind} on {inj.source}/{inj.signal} at "
                    f"{iso(started + inj.start)}[/]"
                )
            topic = settings.kafka.topic_signals
            fmt = settings.input.input_format
            await _produce(producer, plant, topic, started, state, None, fmt)
            done += 1
    finally:
        await producer.stop()
    return state.produced
