"""Changelog bytes per slowly-updating source, by state save interval (issue 30, item 14).

Before, every source scored since the last checkpoint (every `ANOMSTREAM_STATE_FLUSH_INTERVAL`,
0.5 s) had its whole state (~52 KB at 8 signals) written again: a source with a record a second
cost ~50 KB/s of changelog. Now a source is saved once its oldest unsaved record is
`ANOMSTREAM_STATE_SAVE_INTERVAL` old (or it has `ANOMSTREAM_STATE_SAVE_RECORDS`). This runs the
worker's own processor, state owner and default detector suite in process, on a simulated clock
(a checkpoint every 0.5 s, as the worker's timer runs them): `--sources` sources of 8 signals
each send a record every `--period` seconds; after a warm-up it counts the bytes written to the
store per source and second, for each save interval (0 = the old behaviour).

Usage: `python -m bench.state_writes [--sources 20] [--periods 0.2,1,2] [--intervals 0,5,30]`.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable
from typing import Any

import numpy as np
import orjson

from bench.hotpath import TOPICS, Sink, Store
from streams.codec import Limits
from streams.metrics import Metrics
from streams.processor import Processor
from streams.scoring import build_scorer
from streams.settings import load_settings
from streams.state import SourceStates
from streams.structs import InMessage

TICK = 0.5
"""Seconds between checkpoints: the default `ANOMSTREAM_STATE_FLUSH_INTERVAL`."""
BASE_TS = 1795514400


class CountingStore(Store):
    """The in-memory store, counting what is written."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.saves = 0

    def put(self, key: bytes, value: bytes, partition: int) -> Awaitable[Any]:
        self.written += len(value)
        self.saves += 1
        return super().put(key, value, partition)


class Stream:
    """`sources` sources, each with a record every `period` seconds, phases staggered."""

    def __init__(self, sources: int, period: float, seed: int = 3) -> None:
        self.sources = sources
        self.period = period
        self.rng = np.random.default_rng(seed)
        self.offset = 0

    def between(self, start: float, stop: float) -> list[InMessage]:
        """The messages of records due in [start, stop)."""
        out = []
        for s in range(self.sources):
            phase = self.period * s / self.sources
            first = int(np.ceil((start - phase) / self.period))
            t = phase + max(first, 0) * self.period
            while t < stop:
                values = self.rng.normal(10.0, 1.0, 8).round(3)
                name = f"src-{s:03d}"
                rec = {
                    "source": name,
                    "ts": BASE_TS + t,
                    "signals": {f"s{k}": float(values[k]) for k in range(8)},
                }
                value = orjson.dumps(rec)
                out.append(InMessage("signals", s % 4, self.offset, name.encode(), value, None))
                self.offset += 1
                t += self.period
        return out


async def measure(
    sources: int, period: float, interval: float, warm: int, seconds: float
) -> dict[str, float]:
    """Bytes and saves per source and second over `seconds` after `warm` records per source."""
    settings = load_settings(environ={})
    scorer = build_scorer(settings)
    metrics, store = Metrics(), CountingStore()
    clock = [0.0]
    states = SourceStates(
        scorer,
        store,
        metrics,
        flush_interval=TICK,
        clock=lambda: clock[0],
        save_interval=interval,
        save_records=settings.state.state_save_records,
    )
    proc = Processor(scorer, states, Sink(), TOPICS, Limits(max_future=0.0), metrics)
    stream = Stream(sources, period)
    warm_ticks = int(np.ceil(warm * period / TICK))
    written = saves = 0
    for tick in range(warm_ticks + int(seconds / TICK)):
        if tick == warm_ticks:
            written, saves = store.written, store.saves
        t = tick * TICK
        batch = stream.between(t, t + TICK)
        clock[0] = t + TICK
        async with states.lock:
            if batch:
                await proc.process(batch)
            await states.checkpoint()
    size = sum(len(v) for v in store.data.values()) / max(len(store.data), 1)
    per = sources * seconds
    return {
        "bytes_per_source_s": (store.written - written) / per,
        "saves_per_source_s": (store.saves - saves) / per,
        "state_bytes": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=20)
    parser.add_argument("--periods", default="0.2,1,2", help="seconds between a source's records")
    parser.add_argument("--intervals", default="0,5,30", help="state save intervals (s)")
    parser.add_argument("--warm", type=int, default=300, help="records per source before")
    parser.add_argument("--seconds", type=float, default=120.0, help="simulated time measured")
    args = parser.parse_args()
    periods = [float(p) for p in args.periods.split(",")]
    intervals = [float(i) for i in args.intervals.split(",")]
    print(f"{args.sources} sources x 8 signals, a checkpoint every {TICK} s, {args.seconds:.0f} s")
    print("record every | save interval | changelog per source | saves per source | state")
    for period in periods:
        for interval in intervals:
            got = asyncio.run(measure(args.sources, period, interval, args.warm, args.seconds))
            print(
                f"{period:>10.1f} s | {interval:>11.0f} s | "
                f"{got['bytes_per_source_s'] / 1000:>14.1f} KB/s"
                f" | {got['saves_per_source_s']:>12.2f} /s | {got['state_bytes'] / 1000:.1f} KB"
            )


if __name__ == "__main__":
    main()
