"""The throughput benchmark's workload: seeded records of many sources, as single records or arrays,
in each input format (JSON, Influx line protocol, Telegraf JSON, Avro).

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
from streams.formats.writers import AvroWriter, avro_schema

SIGNALS = 8
BASE_TS = 1795514400
ENCODINGS: dict[str, tuple[str, int]] = {
    "single": ("json", 1),
    "array100": ("json", 100),
    "influx100": ("influx", 100),
    "telegraf100": ("telegraf-json", 100),
    "avro100": ("avro", 100),
}
"""Name -> (input format, records per message). The same records in every format: in line
protocol the measurement is the source id (no tags: the source decodes to the same id); in Avro
an array of `avro_schema()` records (`AVRO_BATCH`), registered before the run."""
AVRO_BATCH = {"type": "array", "items": avro_schema()}


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
    format: str = "json"
    pool: int = 200_000
    schema_id: int = 1
    """Avro: the id the registry gave `AVRO_BATCH`."""

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
                recs = [record(t, s) for t in range(block, block + n)]
                out.append((key, encode(recs, self.format, self.schema_id), n))
        return out


def encode(recs: list[dict[str, Any]], format: str, schema_id: int = 1) -> bytes:
    """One message of these records in `format` (a lone JSON record is not an array; Avro is
    always an array, under `schema_id`)."""
    if format == "json":
        return orjson.dumps(recs[0] if len(recs) == 1 else recs)
    if format == "influx":
        return "\n".join(
            f"{r['source']} "
            + ",".join(f"{k}={v!r}" for k, v in r["signals"].items())
            + f" {r['ts'] * 1_000_000_000}"
            for r in recs
        ).encode()
    if format == "telegraf-json":
        metrics = [
            {"fields": r["signals"], "name": r["source"], "tags": {}, "timestamp": r["ts"]}
            for r in recs
        ]
        return orjson.dumps(metrics[0] if len(metrics) == 1 else {"metrics": metrics})
    if format == "avro":
        datums = [{**r, "ts": r["ts"] * 1_000_000} for r in recs]
        return AvroWriter(schema_id, batch=True).frame(datums)
    raise ValueError(f"unknown input format {format!r}")


def workload(
    records: int,
    sources: int,
    per_message: int,
    seed: int = 1,
    format: str = "json",
    schema_id: int = 1,
) -> list[tuple[bytes, bytes]]:
    """Key and value of the first `records` records (rounded up to whole steps and messages)."""
    work = Workload(sources, per_message, seed, format=format, schema_id=schema_id)
    return [(k, v) for k, v, _ in work.messages(0, work.steps_for(records))]
