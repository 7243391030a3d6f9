"""Decode cost per input format: µs per record for JSON, Influx line protocol, Telegraf JSON and
Avro (Confluent wire format, the schema `replay --format avro` registers, already fetched).

The same records (8 signals, 100 sources) are written in each format by the writers `anomstream
replay --format` uses, one record per message and batched (an array, lines, `metrics`), and
decoded by `streams.formats.decoder_for` as the worker does. With `line-protocol-parser`
importable (`pip install line-protocol-parser`), its parse of the same lines is printed beside
ours: the figure that decided for a parser of our own (docs/messages.md).

    python -m bench.formats [--records 20000] [--batch 50]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import orjson

from detectors.records import Origin, Record
from detectors.timestamps import epoch_text
from streams.codec import Limits
from streams.formats import ALL_FORMATS, Decoder, decoder_for
from streams.formats.avro import AvroDecoder
from streams.formats.influx import InfluxOptions, parse_line
from streams.formats.writers import AvroWriter, avro_schema, telegraf_metric, write

OPTIONS = InfluxOptions(source_tags=("host",))
SIGNALS = ["temp", "pressure", "flow", "vibration", "current", "voltage", "speed", "level"]


def records(n: int) -> list[Record]:
    rng = np.random.default_rng(3)
    values = rng.normal(50, 5, (n, len(SIGNALS)))
    start = 1_795_514_400.0
    return [
        Record(
            f"plant/pump-{i % 100}",
            start + i * 0.25,
            epoch_text(start + i * 0.25),
            dict(zip(SIGNALS, map(float, values[i]), strict=True)),
        )
        for i in range(n)
    ]


def batched(recs: list[Record], fmt: str, size: int) -> list[bytes]:
    """Messages of `size` records each, as each format batches."""
    out = []
    for start in range(0, len(recs), size):
        part = recs[start : start + size]
        if fmt == "influx":
            out.append(b"\n".join(write(r, fmt, OPTIONS) or b"" for r in part))
        elif fmt == "avro":
            out.append(AvroWriter(2, batch=True).many(part))
        elif fmt == "telegraf-json":
            out.append(orjson.dumps({"metrics": [telegraf_metric(r, OPTIONS) for r in part]}))
        else:
            out.append(orjson.dumps([orjson.loads(write(r, fmt, OPTIONS) or b"") for r in part]))
    return out


def decode_all(
    decode: Decoder, messages: list[bytes], origin: Origin, limits: Limits, now: float
) -> int:
    """Records decoded from `messages`."""
    return sum(len(decode(m, origin, limits, now)[0]) for m in messages)


def per_record(run: Callable[[], int], repeat: int = 5) -> float:
    """Best of `repeat` runs, µs per record."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        n = run()
        best = min(best, (time.perf_counter() - started) / n * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=50, help="records per batched message")
    args = parser.parse_args()
    recs = records(args.records)
    limits, origin, now = Limits(), Origin("signals", 0, 0), recs[-1].ts
    print(f"decode, µs per record ({args.records} records of {len(SIGNALS)} signals)")
    print(f"{'format':<15}{'1 per message':>15}{f'{args.batch} per message':>17}{'vs json':>10}")
    json_cost = 0.0
    for fmt in ALL_FORMATS:
        decode = decoder_for(fmt, OPTIONS)
        if isinstance(decode, AvroDecoder):  # as a fetch from the registry leaves it
            decode.learn(1, avro_schema())
            decode.learn(2, {"type": "array", "items": avro_schema()})
            single = [AvroWriter(1)(r) for r in recs]
        else:
            single = [write(r, fmt, OPTIONS) or b"" for r in recs]
        many = batched(recs, fmt, args.batch)

        one = per_record(partial(decode_all, decode, single, origin, limits, now))
        batch = per_record(partial(decode_all, decode, many, origin, limits, now))
        json_cost = json_cost or one
        print(f"{fmt:<15}{one:>15.2f}{batch:>17.2f}{one / json_cost:>9.2f}x")
    lines = [(write(r, "influx", OPTIONS) or b"").decode() for r in recs]
    ours = per_record(lambda: sum(1 for line in lines if parse_line(line)))
    print(f"\nparse one line, µs: ours {ours:.2f}", end="")
    try:
        from line_protocol_parser import parse_line as theirs  # type: ignore[import-not-found]
    except ImportError:
        print("; line-protocol-parser not installed")
        return
    print(f"; line-protocol-parser {per_record(lambda: sum(1 for x in lines if theirs(x))):.2f}")


if __name__ == "__main__":
    main()
