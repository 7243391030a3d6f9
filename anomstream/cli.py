"""The `anomstream` command. Errors users can fix are one line on stderr and a non-zero exit."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from anomstream.cli_kafka import kafka_options, settings_from
from anomstream.cli_models import detect, evaluate, train
from anomstream.cli_plant import demo, plant
from anomstream.cli_rules import rules
from anomstream.cli_serve import serve
from anomstream.cli_status import status
from anomstream.csv_options import csv_options
from detectors.csvdata import CsvError
from detectors.model_spec import ModelError
from detectors.rules import RuleError
from harness.brokers import BrokerError
from streams.settings import SettingsError, stray_variables
from streams.topics import BrokerUnavailable

USER_ERRORS = (
    SettingsError,
    BrokerUnavailable,
    CsvError,
    BrokerError,
    ModelError,
    RuleError,
    OSError,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="anomstream", prog_name="anomstream")
def cli() -> None:
    """Streaming anomaly detection over Kafka."""
    for line in stray_variables(os.environ):  # a typo would otherwise be ignored in silence
        click.echo(f"anomstream: warning: {line}", err=True)


@cli.command()
@kafka_options
@click.option("--app-id", help="consumer group / Faust app id")
@click.option("--metrics-port", type=int, help="port of /metrics (0 = off)")
@click.option("--partitions", type=int, help="partitions of the topics it creates")
@click.option("-l", "--log-level", type=click.Choice(["crit", "error", "warn", "info", "debug"]))
@click.option("--startup-wait", type=float, help="seconds to wait for the broker at start (60)")
def worker(
    config: Path | None,
    broker: str | None,
    app_id: str | None,
    metrics_port: int | None,
    partitions: int | None,
    log_level: str | None,
    startup_wait: float | None,
) -> None:
    """Run the worker: consume the signals topic, publish scores and anomaly events.

    \b
    Examples:
      anomstream worker                                   # localhost:9092
      anomstream worker --broker kafka://broker1:9092,broker2:9092 --config anomstream.toml
    """
    from streams.worker import run_worker

    settings = settings_from(
        config,
        broker,
        app_id=app_id,
        metrics_port=metrics_port,
        partitions=partitions,
        log_level=log_level,
        startup_wait=startup_wait,
    )
    run_worker(settings)


@cli.command()
@click.option("--port", type=int, default=9092, show_default=True)
@click.option(
    "--kind",
    type=click.Choice(["tansu", "kafka"]),
    default="tansu",
    show_default=True,
    help="tansu: embedded, in memory; kafka: Apache Kafka (needs java 17 and mvn)",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=Path(".anomstream/broker"),
    show_default=True,
)
def broker(port: int, kind: str, workdir: Path) -> None:
    """Run a local Kafka-compatible broker until Ctrl-C; it prints the commands to use next.

    \b
    Examples:
      anomstream broker &                 # embedded (Tansu), in memory, on localhost:9092
      anomstream broker --kind kafka --port 19092   # Apache Kafka (KRaft), needs java and mvn
    """
    import time

    from harness.brokers import KafkaBroker, TansuBroker, next_steps

    cls = TansuBroker if kind == "tansu" else KafkaBroker
    with cls(workdir, port=port) as running:
        click.echo(f"{kind} broker listening on {running.bootstrap} (Ctrl-C to stop)")
        click.echo(next_steps(running))
        try:
            while running.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    click.echo("broker stopped")


@cli.command()
@kafka_options
@click.argument("csv_file", type=click.Path(path_type=Path))
@click.option(
    "--rate",
    type=float,
    default=100.0,
    show_default=True,
    help="records per second (0 = as fast as possible)",
)
@click.option(
    "--source",
    default="csv",
    show_default=True,
    help="source id when the file has no source column",
)
@csv_options(labels=False)
@click.option("--limit", type=click.IntRange(0), help="stop after this many records")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "influx", "telegraf-json", "avro"]),
    help="message format (default: ANOMSTREAM_INPUT_FORMAT, json); influx and telegraf-json "
    "map sources by ANOMSTREAM_INFLUX_SOURCE_TAGS, and skip records with every value missing; "
    "avro registers its schema at ANOMSTREAM_REGISTRY_URL as <topic>-value",
)
def replay(
    config: Path | None,
    broker: str | None,
    csv_file: Path,
    rate: float,
    source: str,
    limit: int | None,
    fmt: str | None,
    **reading: Any,
) -> None:
    """Produce a CSV file into the signals topic at --rate records/s, read as detect reads it.

    \b
    Examples:
      anomstream replay data.csv --rate 200 --broker kafka://broker1:9092
      anomstream replay labelled.csv --ignore anomaly,culprit --rate 0 --limit 1000
      anomstream replay data.csv --format influx     # as Telegraf's Kafka output writes
      ANOMSTREAM_REGISTRY_URL=http://registry:8081 anomstream replay data.csv --format avro
    """
    from anomstream.csv_options import load_csv
    from anomstream.replay import replay as run

    records = load_csv(csv_file, default_source=source, **reading).records()
    settings = settings_from(config, broker)
    sent = asyncio.run(run(settings, records, rate, limit, fmt or settings.input.input_format))
    click.echo(f"produced {sent} records to {settings.kafka.topic_signals}")


@cli.command()
@kafka_options
@click.option(
    "--topic",
    "what",
    type=click.Choice(["anomalies", "scores", "dlq"]),
    default="anomalies",
    show_default=True,
)
@click.option("--from-beginning", is_flag=True, help="start at the oldest message")
@click.option("-n", "--max", "limit", type=int, help="stop after this many messages")
@click.option("--idle-timeout", type=float, help="stop after this many seconds without a message")
@click.option("--json", "as_json", is_flag=True, help="print the raw JSON")
def tail(
    config: Path | None,
    broker: str | None,
    what: str,
    from_beginning: bool,
    limit: int | None,
    idle_timeout: float | None,
    as_json: bool,
) -> None:
    """Pretty-print anomaly events (or scores, or dead letters) as they arrive.

    \b
    Examples:
      anomstream tail                                   # new anomaly events, until Ctrl-C
      anomstream tail --topic scores --from-beginning -n 20
      anomstream tail --topic dlq --from-beginning --idle-timeout 5 --json
    """
    from anomstream.tail import tail as run

    settings = settings_from(config, broker)
    asyncio.run(run(settings, what, from_beginning, limit, idle_timeout, as_json))


@cli.command()
@kafka_options
@click.argument("data", required=False, type=click.Path(path_type=Path))
@click.option("--from-topic", is_flag=True, help="replay the signals topic instead of a CSV file")
@click.option(
    "--since",
    help="history from this time: RFC 3339, epoch seconds or an age (14d, 36h); "
    "the topic's message times, or the CSV's timestamps",
)
@click.option("--source", help="source id when the file has no source column (default: file stem)")
@csv_options
@click.option("--dry-run", is_flag=True, help="score and print, write nothing")
def warmup(
    config: Path | None,
    broker: str | None,
    data: Path | None,
    from_topic: bool,
    since: str | None,
    source: str | None,
    dry_run: bool,
    **reading: Any,
) -> None:
    """Score history with the worker's detectors and write the state it restores at start-up.

    \b
    Examples:
      anomstream warmup --from-topic --since 28d --broker kafka://broker1:9092
      anomstream warmup history.csv --source pump-7 --dry-run
    """
    from anomstream import warmup as warm
    from detectors.models import ModelBook
    from streams.scoring import build_scorer

    if (data is None) == (not from_topic):
        raise click.UsageError("give either a CSV file or --from-topic")
    try:
        start = None if since is None else warm.parse_since(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--since'") from None
    settings = settings_from(config, broker)
    console = Console()
    try:
        scorer = build_scorer(settings, ModelBook(settings.serving.models_dir))
        warming = warm.Warming(scorer)
        if data is None:
            history = asyncio.run(warm.warm_from_topic(settings, start or 0.0, warming))
            console.print(
                f"read {history.messages} messages from {settings.kafka.topic_signals}"
                + (f", skipped {history.dead} malformed" if history.dead else "")
            )
        else:
            warming.add(warm.records_from_csv(data, start, source, reading))
        warmed = warming.finish()
        if not warmed.states:
            where = settings.kafka.topic_signals if data is None else data
            raise warm.WarmupError(
                f"no records to warm up from in {where}"
                + ("" if since is None else f" since {since}")
            )
        written = None
        if not dry_run:
            written = asyncio.run(warm.write_states(settings, warmed.states, scorer))
    except warm.WarmupError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(warm.summary_table(warmed, written))
    if written is None:
        console.print("dry run: nothing written")
    else:
        console.print(
            f"wrote {len(written)} source states to {settings.kafka.app_id}'s state table. "
            "Start (or restart) the worker now: it restores the table only at start-up, and a "
            "running worker that already holds a source would overwrite its warm state."
        )


cli.add_command(train)
cli.add_command(evaluate)
cli.add_command(detect)
cli.add_command(status)
cli.add_command(serve)
cli.add_command(rules)
cli.add_command(demo)
cli.add_command(plant)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line for errors users can fix, the traceback only for our bugs."""
    try:
        cli.main(args=argv, prog_name="anomstream", standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(0)
    except click.ClickException as exc:
        click.echo(f"anomstream: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except USER_ERRORS as exc:
        click.echo(f"anomstream: error: {exc}", err=True)
        sys.exit(1)
