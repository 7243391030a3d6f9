"""Bounded micro-batches: the worst batch time, event-loop stall and peak memory, per shape.

Runs `streams.processor.Processor` (in-memory store and sink, as `bench.hotpath`) on three
batches, each in a fresh process so that its peak RSS is its own:

- `mixed`: one source with 2,000 records plus 2,000 sources with one record each (4 signals),
  one record per message: laid out at once that is 2,000 steps x 8,004 series;
- `array`: one array message of 18,000 records of one source (2 signals, ~1 MiB);
- `array-mixed`: one array message of 18,000 records: 6,000 of one source, then 12,000 sources
  with one record each (2 signals); laid out at once, 6,000 steps x 24,002 series (~60 GB);
- `normal`: batches of 2,000 records of 100 sources (8 signals, one record per message),
  the worst of ten after warm-up.

"stall" is the longest the event loop went without running another task (Faust's heartbeats
and acknowledgements run there): the batch time, unless the batch is scored in chunks.
Usage: `python -m bench.batches [--only mixed|array|array-mixed|normal]`.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import time

import orjson

from bench.hotpath import TOPICS, Sink, Store, batches
from streams.codec import Limits
from streams.metrics import Metrics
from streams.processor import Processor
from streams.scoring import build_scorer
from streams.settings import load_settings
from streams.state import SourceStates
from streams.structs import InMessage

SHAPES = ("mixed", "array", "array-mixed", "normal")
START = 1795514400


def record(source: str, ts: int, signals: int, i: int) -> dict[str, object]:
    values = {f"x{k}": round((i * 7919 + k * 104729) % 1000 / 100.0, 2) for k in range(signals)}
    return {"source": source, "ts": ts, "signals": values}


def shape(name: str) -> list[list[InMessage]]:
    """The batches of one shape; the last ones are measured (`normal`: all after warm-up)."""
    if name == "mixed":
        recs = [record("busy", START + i, 4, i) for i in range(2000)]
        recs += [record(f"one-{j}", START, 4, j) for j in range(2000)]
        return [
            [
                InMessage("signals", 0, i, str(r["source"]).encode(), orjson.dumps(r))
                for i, r in enumerate(recs)
            ]
        ]
    if name == "array":
        items = [record("pump", START + i, 2, i) for i in range(18_000)]
        return [[InMessage("signals", 0, 0, b"pump", orjson.dumps(items))]]
    if name == "array-mixed":
        items = [record("pump", START + i, 2, i) for i in range(6000)]
        items += [record(f"one-{j}", START, 2, j) for j in range(12_000)]
        return [[InMessage("signals", 0, 0, b"pump", orjson.dumps(items))]]
    return batches(2000 * 13, 1, 2000)


async def measure(name: str) -> str:
    settings = load_settings()
    scorer = build_scorer(settings, None)
    scorer.prepare()
    metrics = Metrics()
    limits = Limits(max_message_bytes=4 << 20)  # the record count is the point, not the bytes
    proc = Processor(
        scorer, SourceStates(scorer, Store(), metrics), Sink(), TOPICS, limits, metrics
    )
    work = shape(name)
    warm = 3 if name == "normal" else 0
    for b in work[:warm]:
        await proc.process(b)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stall = 0.0
    running = True

    async def tick() -> None:
        nonlocal stall
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0)
            now = time.perf_counter()
            stall = max(stall, now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    worst = 0.0
    records = 0
    for b in work[warm:]:
        started = time.perf_counter()
        report = await proc.process(b)
        worst = max(worst, time.perf_counter() - started)
        records = max(records, report.scored)
    running = False
    await ticker
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024  # KiB -> MiB
    cap = getattr(proc, "max_batch_records", None)
    return (
        f"{name:>11}: {records:>6} records a batch, worst batch {worst:6.2f} s, "
        f"longest loop stall {stall:6.2f} s, peak RSS +{peak:,.0f} MiB "
        f"(max_batch_records {cap})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=SHAPES)
    args = parser.parse_args()
    if args.only:
        print(asyncio.run(measure(args.only)), flush=True)
        return
    for name in SHAPES:  # a process each: ru_maxrss is a high-water mark
        subprocess.run([sys.executable, "-m", "bench.batches", "--only", name], check=True)


if __name__ == "__main__":
    main()
