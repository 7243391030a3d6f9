"""`anomstream demo` and `anomstream plant`: the synthetic plant, run whole or streamed into a
broker (or written to a CSV file). Registered in `anomstream.cli`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from rich.console import Console

from anomstream.cli_kafka import kafka_options, settings_from


@click.command()
@click.option(
    "--duration", type=float, default=60.0, show_default=True, help="seconds of plant data"
)
@click.option("--rate", type=float, default=300.0, show_default=True, help="records per second")
@click.option("--sources", type=click.IntRange(3, 50), default=3, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--summary-json", type=click.Path(path_type=Path), help="also write the summary here")
@click.option("--no-live", is_flag=True, help="no live view (for logs and CI)")
@click.option(
    "--model-cache",
    type=click.Path(path_type=Path),
    default=Path(".anomstream/demo-models"),
    show_default=True,
    help="where the demo's autoencoder is trained once and kept",
)
@click.option("--no-model", is_flag=True, help="univariate detectors only (no autoencoder)")
@click.option(
    "--format",
    "input_format",
    type=click.Choice(["json", "influx", "telegraf-json"]),
    default="json",
    show_default=True,
    help="what the plant writes and the worker reads (ANOMSTREAM_INPUT_FORMAT)",
)
def demo(
    duration: float,
    rate: float,
    sources: int,
    seed: int,
    summary_json: Path | None,
    no_live: bool,
    model_cache: Path,
    no_model: bool,
    input_format: str,
) -> None:
    """Embedded broker + worker + a synthetic plant with injected anomalies; prints a summary.

    \b
    Examples:
      anomstream demo                                  # 60 s, live view (what `make demo` runs)
      anomstream demo --duration 20 --no-live --no-model --summary-json demo.json
      anomstream demo --format influx                  # the plant as Telegraf writes it
    """
    from anomstream.demo import Summary, print_summary, run_demo
    from anomstream.demo import summary_json as to_json

    if duration < 10 or rate < 10:
        raise click.BadParameter("needs --duration >= 10 and --rate >= 10")
    console = Console()
    summary = Summary(duration_s=duration)
    try:
        asyncio.run(
            run_demo(
                summary,
                rate,
                sources,
                seed,
                console=console,
                live=not no_live,
                model_cache=None if no_model else model_cache,
                format=input_format,
            )
        )
    except KeyboardInterrupt:
        summary.interrupted = True
    print_summary(summary, console)
    if summary_json is not None:
        summary_json.write_bytes(to_json(summary))


@click.command()
@kafka_options
@click.option("--rate", type=float, default=300.0, show_default=True, help="records per second")
@click.option("--sources", type=click.IntRange(1, 50), default=3, show_default=True)
@click.option(
    "--cycle",
    type=float,
    default=60.0,
    show_default=True,
    help="seconds of plant data per cycle (five injected anomalies each)",
)
@click.option("--cycles", type=int, default=1, show_default=True, help="0 = forever")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--to-csv",
    type=click.Path(path_type=Path, dir_okay=False),
    help="write the plant to this CSV file instead of a topic (nothing is sent)",
)
@click.option(
    "--rows",
    type=click.IntRange(30, 10_000_000),
    default=18_000,
    show_default=True,
    help="with --to-csv: records to write (over all sources)",
)
@click.option(
    "--anomalies/--normal",
    default=False,
    show_default=True,
    help="with --to-csv: inject the five anomalies, labelled in `anomaly` and `culprit` columns",
)
@click.option("--force", is_flag=True, help="with --to-csv: overwrite an existing file")
def plant(
    config: Path | None,
    broker: str | None,
    rate: float,
    sources: int,
    cycle: float,
    cycles: int,
    seed: int,
    to_csv: Path | None,
    rows: int,
    anomalies: bool,
    force: bool,
) -> None:
    """Stream the demo's synthetic plant (with labelled anomalies) into the signals topic, or
    write it to a CSV file (--to-csv) to train, evaluate and detect on.

    \b
    Examples:
      anomstream plant --rate 300 --cycles 0 --broker kafka://broker1:9092
      anomstream plant --to-csv plant.csv --sources 1 --rows 30000   # normal, to train on
      anomstream plant --to-csv labelled.csv --sources 1 --anomalies --seed 8
    """
    from anomstream.demo import stream_plant

    if rate < 1:
        raise click.BadParameter("needs --rate >= 1", param_hint="'--rate'")
    if to_csv is not None:
        from anomstream.samples import write_plant_csv

        if to_csv.exists() and not force:
            raise click.ClickException(f"{to_csv} exists (add --force to overwrite it)")
        done = write_plant_csv(to_csv, rows, anomalies, sources, seed, rate)
        label = f", {done.anomalous} labelled anomalous" if anomalies else ""
        pumps = f"{done.sources} pump" + "s" * (done.sources > 1)
        click.echo(f"wrote {done.rows} records of {pumps} to {to_csv}{label}")
        return
    if cycle < 10:
        raise click.BadParameter("needs --cycle >= 10", param_hint="'--cycle'")
    settings = settings_from(config, broker)
    sent = asyncio.run(stream_plant(settings, rate, sources, cycle, cycles, seed, Console()))
    click.echo(f"produced {sent} records to {settings.kafka.topic_signals}")
