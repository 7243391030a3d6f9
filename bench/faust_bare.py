"""(b) of the throughput benchmark: a bare Faust agent doing the raw pass-through's 1-in-1-out.

What Faust itself costs per event: the agent iterates events one by one (Faust's own ack and
commit), orjson-parses each message and sends one output message per record through Faust's
producer, with the same output as `bench.passthrough`. Its settings are the worker's
(`streams.app.build_app`) where they apply: fetch size, commit interval, acks=all, linger,
`stream_wait_empty`, and the lowered group timeouts the tests use so it joins fast. Faust's own
producer has no idempotence outside transactions (the worker's output producer has it).
Run as a child process by `bench.throughput`:
`python -m bench.faust_bare BOOTSTRAP INPUT OUTPUT APP_ID DATADIR [--partitions N]`.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import faust

from bench.passthrough import outputs
from streams.settings import load_settings


def build_app(
    bootstrap: str, source: str, sink: str, app_id: str, datadir: Path, parts: int
) -> Any:
    """The Faust app with its one agent; settings as the worker's, group timeouts as in tests."""
    worker = load_settings(environ={}, broker=bootstrap)  # the worker's defaults
    app = faust.App(
        app_id,
        broker=worker.kafka.broker,
        datadir=str(datadir),
        web_enabled=False,
        topic_partitions=parts,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=max(4 * worker.limits.max_message_bytes, 1_048_576),
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        broker_rebalance_timeout=5,
        broker_commit_interval=worker.kafka.broker_commit_interval,
        producer_acks=-1,
        producer_linger_ms=worker.kafka.producer_linger_ms,
        producer_max_batch_size=1_048_576,  # as the worker's output producer
        stream_wait_empty=True,
    )
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "partitions": parts,
    }
    inputs = app.topic(source, **raw)
    output = app.topic(sink, **raw)

    @app.agent(inputs, name="echo")
    async def echo(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            for out in outputs(event.value, msg.topic, msg.partition, msg.offset):
                await output.send(key=event.key, value=out)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bootstrap")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("app_id")
    parser.add_argument("datadir", type=Path)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    # Faust runs on the loop current at construction time (as in streams.worker).
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = build_app(
        args.bootstrap, args.input, args.output, args.app_id, args.datadir, args.partitions
    )
    # "info" as the worker's default: at "warn" Faust turns every library's debug call into a log
    # record (its terminal spinner sets the root logger to DEBUG).
    faust.Worker(app, loglevel="info", quiet=True, loop=loop).execute_from_commandline()


if __name__ == "__main__":
    main()
