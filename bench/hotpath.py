"""The worker's processing path without Kafka: µs per record by stage, before and after a change.

Runs `streams.processor.Processor` (decode -> state -> score -> messages -> sends) on the
throughput benchmark's workload with an in-memory store and a sink that acknowledges at once, so
what it prints is the worker's own CPU per record, stage by stage. `make bench-throughput` then
tells what that is worth with a broker in the loop. `--rules` prints a second line with the
validation rules of a file judged too (`--rules 2`: two typical rules, `bench.rules` shapes).
Each output mode (`--scores`, the `ANOMSTREAM_SCORES` values) is a run of its own, its CPU split
by stage (`Stages`).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from bench.workload import Workload
from detectors import engine
from detectors.messages import SCORE_MODES, ScoreMode
from detectors.models import ModelBook
from streams.codec import Limits
from streams.metrics import Metrics
from streams.processor import Processor
from streams.scoring import build_scorer
from streams.settings import load_settings
from streams.state import SourceStates
from streams.structs import InMessage
from streams.topics import TopicPlan
from streams.worker import tune_gc

TOPICS = TopicPlan("signals", "scores", "anomalies", "dlq", "changelog", 4, 1)
STAGES = ("decode", "state load", "detectors", "autoencoder", "messages", "state save")


class Stages:
    """CPU seconds per stage, from timing the callable each stage is (nothing in the code
    timed changes). `detectors` is the scoring call less the autoencoder inside it; `other`
    is the rest of the batch (sends, metrics, bookkeeping)."""

    def __init__(self) -> None:
        self.cpu = dict.fromkeys(STAGES, 0.0)

    def timed(self, stage: str, inner: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(inner)
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.cpu[stage] += time.process_time() - started

        return call

    def timed_async(self, stage: str, inner: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        @functools.wraps(inner)
        async def call(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()  # nothing else runs in this loop: the stage's CPU
            try:
                return await inner(*args, **kwargs)
            finally:
                self.cpu[stage] += time.process_time() - started

        return call

    @contextmanager
    def on(self, proc: Processor) -> Iterator[None]:
        """Time `proc`'s stages (and the autoencoder, a function of `detectors.engine`) while
        inside."""
        states = proc.states
        stages = [
            (proc, "_decode", "decode"),
            (states, "load", "state load"),
            (states, "score", "detectors"),
            (engine, "autoencode", "autoencoder"),
            (proc, "score_outputs", "messages"),
            (states, "changed", "state save"),
        ]
        with ExitStack() as stack:
            for owner, name, stage in stages:
                timed = self.timed(stage, getattr(owner, name))
                stack.enter_context(mock.patch.object(owner, name, timed))
            flush = self.timed_async("state save", states.flush)
            stack.enter_context(mock.patch.object(states, "flush", flush))
            yield

    def lines(self, records: int, total: float) -> list[str]:
        cpu = dict(self.cpu)
        cpu["detectors"] -= cpu["autoencoder"]
        cpu["other"] = total - sum(self.cpu.values()) + self.cpu["autoencoder"]
        return [
            f"  {stage:<12} {1e6 * sec / records:6.1f} µs per record" for stage, sec in cpu.items()
        ]


class Sink:
    """Acknowledges every send at once; counts bytes."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0
        self._done: asyncio.Future[None] | None = None

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None
    ) -> Awaitable[Any]:
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
            self._done.set_result(None)
        self.messages += 1
        self.bytes += len(value)
        return self._done

    async def send_many(
        self, topic: str, messages: Sequence[tuple[bytes, bytes]]
    ) -> list[Awaitable[Any]]:
        return [await self.send(topic, key, value, None) for key, value in messages]


class Store:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def put(self, key: bytes, value: bytes, partition: int) -> Awaitable[Any]:
        self.data[key] = value
        return asyncio.sleep(0)

    def keys(self) -> list[bytes]:
        return list(self.data)

    def delete(self, key: bytes) -> Awaitable[Any]:
        self.data.pop(key, None)
        return asyncio.sleep(0)


def batches(records: int, per_message: int, batch_records: int) -> list[list[InMessage]]:
    work = Workload(100, per_message)
    msgs = work.messages(0, work.steps_for(records))
    per_batch = max(1, batch_records // per_message)
    out = []
    for start in range(0, len(msgs), per_batch):
        chunk = msgs[start : start + per_batch]
        out.append(
            [
                InMessage("signals", hash(k) % 4, start + i, k, v, None)
                for i, (k, v, _) in enumerate(chunk)
            ]
        )
    return out


TWO_RULES = """
[[rules]]
name = "s0_high"
expr = "s0 < 62"

[[rules]]
name = "s1_band"
expr = "abs(s1 - 50) < 12 and s2 > 0"
"""
"""Two rules of typical shape on the workload's signals (normal, mean 50, sd 5): each fails on
about 1 % of records, so runs start and end in every batch."""


async def run(
    records: int,
    per_message: int,
    batch_records: int,
    warm: int,
    models: Path | None = None,
    rules: Path | None = None,
    scores: ScoreMode = "full",
) -> None:
    settings = load_settings(rules_file=rules)
    scorer = build_scorer(settings, None if models is None else ModelBook(models))
    metrics = Metrics()
    sink = Sink()
    proc = Processor(
        scorer,
        SourceStates(scorer, Store(), metrics),
        sink,
        TOPICS,
        Limits(),
        metrics,
        scores=scores,
    )
    all_batches = batches(records + warm, per_message, batch_records)
    n_warm = max(1, warm // batch_records)
    for b in all_batches[:n_warm]:
        await proc.process(b)
    scored = 0
    stages = Stages()
    sent = sink.bytes
    started = time.perf_counter()
    cpu = time.process_time()
    with stages.on(proc):
        for b in all_batches[n_warm:]:
            report = await proc.process(b)
            scored += report.scored
        await proc.states.flush()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    print(
        f"{per_message:>4} per message, batches of {batch_records}, scores {scores}"
        f"{'' if rules is None else ', rules ' + rules.name}: {scored} "
        f"records, {1e6 * cpu / scored:.1f} µs CPU per record, {scored / wall:,.0f} records/s, "
        f"{(sink.bytes - sent) / scored:,.0f} bytes out per record"
    )
    print("\n".join(stages.lines(scored, cpu)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--warm", type=int, default=30_000)
    parser.add_argument("--per-message", type=int, default=100)
    parser.add_argument("--batch", type=int, default=2000, help="records per micro-batch")
    parser.add_argument(
        "--models", type=Path, help="a models folder: serve its autoencoders too (variant d)"
    )
    parser.add_argument(
        "--rules", help="then again with this rules file judged too ('2': two typical rules)"
    )
    parser.add_argument(
        "--scores",
        default=",".join(SCORE_MODES),
        help="output modes to run, comma-separated (ANOMSTREAM_SCORES values)",
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.scores.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(SCORE_MODES))
    if unknown:
        parser.error(f"unknown output mode(s) {', '.join(unknown)}: use {', '.join(SCORE_MODES)}")
    tune_gc()  # as the worker does: collections would otherwise land in whichever stage
    for mode in modes:
        asyncio.run(
            run(args.records, args.per_message, args.batch, args.warm, args.models, scores=mode)  # type: ignore[arg-type]
        )
    if args.rules is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(args.rules)
        if args.rules == "2":
            rules = Path(tmp, "2-rules.toml")
            rules.write_text(TWO_RULES)
        asyncio.run(run(args.records, args.per_message, args.batch, args.warm, args.models, rules))


if __name__ == "__main__":
    main()
