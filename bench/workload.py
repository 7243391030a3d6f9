"""The throughput benchmark's workload: seeded records of many sources, as single records or arrays.

Every processor is fed the same bytes, and `bench.hotpath` runs the same records without Kafka,
so the workload is a module of its own that both import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from bench.latency import Message

SIGNALS = 8
BASE_TS = 1795514400
ENCODINGS = {"single": 1, "array100": 100}


@dataclass(frozen=True)
class Workload:
    """Records of `sources` sources, one time step after another, values from a seeded pool.

    Step t holds one record per source (ts = BASE_TS + t). One record per message: step by
    step, source by source. Arrays: each message holds `per_message` consecutive steps of one
    source (as a gateway batching per device would), sources in turn.
    """

    sources: int
    per_message: int
    seed: int = 1
    pool: int = 200_000

    def values(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        return rng.normal(50.0, 5.0, (self.pool, SIGNALS)).round(3)

    def steps_for(self, records: int) -> int:
        """Time steps that hold at least `records` records, whole messages only."""
        steps = math.ceil(records / self.sources)
        return math.ceil(steps / self.per_message) * self.per_message

    def messages(self, first_step: int, steps: int) -> list[Message]:
        pool = self.values()
        names = [f"s{k}" for k in range(SIGNALS)]

        def record(t: int, s: int) -> dict[str, Any]:
            row = pool[(t * self.sources + s) % self.pool].tolist()
            return {
                "source": f"src-{s:04d}",
                "ts": BASE_TS + t,
                "signals": dict(zip(names, row, strict=True)),
            }

        out: list[Message] = []
        n = self.per_message
        for block in range(first_step, first_step + steps, n):
            for s in range(self.sources):
                key = f"src-{s:04d}".encode()
                if n == 1:
                    out.append((key, orjson.dumps(record(block, s)), 1))
                else:
                    recs = [record(t, s) for t in range(block, block + n)]
                    out.append((key, orjson.dumps(recs), n))
        return out


def workload(
    records: int, sources: int, per_message: int, seed: int = 1
) -> list[tuple[bytes, bytes]]:
    """Key and value of the first `records` records (rounded up to whole steps and messages)."""
    work = Workload(sources, per_message, seed)
    return [(k, v) for k, v, _ in work.messages(0, work.steps_for(records))]
