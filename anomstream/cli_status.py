"""The `anomstream status` command (registered in `anomstream.cli`)."""

from __future__ import annotations

import json

import click
from rich.console import Console

from anomstream.status import DEFAULT_URL, StatusUnavailable, fetch_status, render, wait_status


@click.command()
@click.option(
    "--url",
    default=DEFAULT_URL,
    show_default=True,
    help="the worker's metrics server (ANOMSTREAM_METRICS_PORT), or its /status",
)
@click.option("--json", "as_json", is_flag=True, help="print the raw JSON document")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    help="wait up to this many seconds for the worker to answer and be ready",
)
def status(url: str, as_json: bool, wait: float | None) -> None:
    """What a running worker holds: sources (and why any still warms up), models, partitions,
    consumer lag, uptime and version.

    \b
    Examples:
      anomstream status                              # the worker on localhost:9464
      anomstream status --wait 60                    # until it is ready (exit 1 if not in time)
      anomstream status --url http://worker-2:9464 --json
    """
    try:
        doc = fetch_status(url) if wait is None else wait_status(url, wait)
    except StatusUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        render(doc, Console(highlight=False))
    if wait is not None and not doc.get("ready"):
        raise click.ClickException(f"the worker at {url} is not ready after {wait:g} s")
