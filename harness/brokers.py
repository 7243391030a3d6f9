"""Real brokers for tests, benchmarks and the CLI: Apache Kafka (KRaft, from Maven jars) and Tansu.

Integration tests must talk the Kafka protocol to a real broker, never to a mock: Apache Kafka
(harness.kafka, its jars from harness.kafka_dist) or the embedded Tansu (harness.tansu), both
child processes stopped by pid and never left behind (harness.local), or one someone else runs
(`ExternalBroker`). This module is the front door, so users import one place: the `Broker`
protocol they code against, `broker_from_spec` for `ANOMSTREAM_TEST_BROKER`, the broker classes,
`free_port`, `BrokerError`, the pinned versions, and the CLI the Makefile calls.

CLI: `python -m harness.brokers check|fetch` and
`python -m harness.brokers run kafka|tansu [--port N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from harness.errors import BrokerError
from harness.kafka import KafkaBroker
from harness.kafka_dist import KAFKA_VERSION, fetch_kafka, kafka_available
from harness.probe import free_port, wait_ready
from harness.process import StartStop
from harness.tansu import TANSU_VERSION, TansuBroker

__all__ = [
    "KAFKA_VERSION",
    "TANSU_VERSION",
    "Broker",
    "BrokerError",
    "ExternalBroker",
    "KafkaBroker",
    "TansuBroker",
    "broker_from_spec",
    "free_port",
    "main",
    "next_steps",
]

# --------------------------------------------------------------------------- the protocol


@runtime_checkable
class Broker(Protocol):
    """What tests, benchmarks and the CLI need from any broker, local process or not."""

    kind: str
    version: str

    @property
    def bootstrap(self) -> str:
        """`host:port` for aiokafka's bootstrap_servers."""
        ...

    @property
    def url(self) -> str:
        """`kafka://host:port` for Faust's broker setting."""
        ...

    def start(self, timeout: float = ...) -> None:
        """Start (or restart, keeping data where the broker keeps any) and wait until ready."""
        ...

    def stop(self, timeout: float = ...) -> None:
        """Stop the broker: SIGTERM, then SIGKILL after `timeout` seconds."""
        ...

    def log_tail(self, n: int = ...) -> list[str]:
        """The last n lines of the broker's log, for failure messages."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class ExternalBroker(StartStop):
    """A broker someone else runs (`host:port`): start and stop only check it / do nothing."""

    kind = "external"
    version = "unknown"

    def __init__(self, address: str) -> None:
        address = address.removeprefix("kafka://")
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise BrokerError(f"broker address must be host:port, got {address!r}")
        self.host = host
        self.port = int(port)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def start(self, timeout: float = 30.0) -> None:
        """Not ours to start: only wait until it answers, so tests fail with a clear reason."""
        wait_ready(self.bootstrap, timeout)

    def stop(self, timeout: float = 0.0) -> None:
        """Not ours to stop."""

    def log_tail(self, n: int = 50) -> list[str]:
        return []

    def __repr__(self) -> str:
        return f"ExternalBroker({self.bootstrap})"


def broker_from_spec(spec: str, workdir: Path, port: int | None = None) -> Broker:
    """A broker, not started, for `kafka`, `tansu` or `host:port` (ANOMSTREAM_TEST_BROKER)."""
    value = spec.strip()
    if value.lower() == "kafka":
        return KafkaBroker(workdir, port)
    if value.lower() == "tansu":
        return TansuBroker(workdir, port)
    if ":" in value:
        return ExternalBroker(value)
    raise BrokerError(f"unknown broker {spec!r}: use kafka, tansu or host:port")


def next_steps(broker: Broker) -> str:
    """What to run next against a broker we started (`anomstream broker`, `... run`): the exact
    commands, with its address, for the user to paste in other terminals."""
    url = broker.url
    rows = [
        (f"anomstream worker --broker {url}", "scores what comes in"),
        ("anomstream status --wait 60", "the worker, once ready"),
        (f"anomstream plant --broker {url} --cycle 20", "synthetic pumps, anomalies"),
        (f"anomstream replay FILE.csv --broker {url}", "or your own CSV"),
        (f"anomstream tail --broker {url} --from-beginning", "the anomaly events"),
    ]
    width = max(len(command) for command, _ in rows)
    lines = ["next, each in its own terminal:"]
    lines += [f"  {command:<{width}}  # {why}" for command, why in rows]
    if broker.kind == "tansu":
        lines += [
            "Tansu refuses idempotent producers: the worker and the producers fall back to",
            "plain ones and say so once (ANOMSTREAM_PRODUCER_IDEMPOTENCE=false silences it).",
        ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


def _cmd_fetch(args: argparse.Namespace) -> int:
    started = time.monotonic()
    libs = fetch_kafka(args.version)
    jars = sum(1 for _ in libs.glob("*.jar"))
    print(libs)
    print(
        f"kafka {args.version}: {jars} jars in {time.monotonic() - started:.1f}s", file=sys.stderr
    )
    return 0


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM handler for `run`: unwind like Ctrl-C so the broker is stopped in order."""
    raise KeyboardInterrupt


def _cmd_run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir) if args.workdir else None
    with contextlib.ExitStack() as stack:
        if workdir is None:
            import tempfile

            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="anomstream-")))
        broker: KafkaBroker | TansuBroker
        if args.kind == "kafka":
            broker = KafkaBroker(workdir, args.port, version=args.version)
        else:
            broker = TansuBroker(workdir, args.port)
        started = time.monotonic()
        # Ctrl-C and SIGTERM (a supervisor) both unwind so the broker is stopped; SIGINT is set
        # explicitly because a shell's background job starts with it ignored.
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            broker.start(timeout=args.timeout)
            print(broker.bootstrap, flush=True)
            print(
                f"{broker.kind} {broker.version} ready at {broker.bootstrap} "
                f"in {time.monotonic() - started:.1f}s (log: {broker.log_path}); Ctrl-C stops it",
                file=sys.stderr,
                flush=True,
            )
            print(next_steps(broker), file=sys.stderr, flush=True)
            while broker.running:
                time.sleep(0.5)
            print(f"{broker.kind} exited; log: {broker.log_path}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("stopping", file=sys.stderr)
            return 0
        finally:
            broker.stop()


def _cmd_check(args: argparse.Namespace) -> int:
    ok, reason = kafka_available()
    print(f"Apache Kafka {KAFKA_VERSION} can run here" if ok else reason)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.brokers fetch|check|run`: errors are one line on stderr, exit 1."""
    parser = argparse.ArgumentParser(
        prog="python -m harness.brokers", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="resolve the Apache Kafka jars into the cache")
    fetch.add_argument("--version", default=KAFKA_VERSION)
    fetch.set_defaults(func=_cmd_fetch)
    check = sub.add_parser("check", help="exit 0 if Apache Kafka can run here, else say why")
    check.set_defaults(func=_cmd_check)
    run = sub.add_parser("run", help="run a broker until Ctrl-C")
    run.add_argument("kind", choices=["kafka", "tansu"])
    run.add_argument("--port", type=int, default=None, help="client port (default: a free one)")
    run.add_argument("--workdir", default=None, help="data/log dir (default: a temporary one)")
    run.add_argument("--version", default=KAFKA_VERSION, help="Kafka version (kafka only)")
    run.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
    run.set_defaults(func=_cmd_run)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
