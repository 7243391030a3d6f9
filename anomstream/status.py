"""`anomstream status`: read a worker's `/status` document and show it as tables.

The worker builds the document (`streams.status`); this side only fetches it over HTTP and lays
it out, so it works against a worker on another host too (`--url`).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from rich.console import Console
from rich.table import Table

DEFAULT_URL = "http://localhost:9464"
"""The worker's metrics server with the default `ANOMSTREAM_METRICS_PORT`."""


class StatusUnavailable(RuntimeError):
    """The worker's status could not be read; the message is one line for the user."""


def status_url(url: str) -> str:
    """`host:port`, `http://host:port` or the endpoint itself -> the endpoint."""
    if "://" not in url:
        url = f"http://{url}"
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if not slash or not path.strip("/"):
        path = "status"
    return f"{scheme}://{host}/{path.strip('/')}"


def fetch_status(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """The worker's status document; `StatusUnavailable` says what went wrong, in one line."""
    where = status_url(url)
    try:
        with urllib.request.urlopen(where, timeout=timeout) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        raise StatusUnavailable(
            f"{where} answered {exc.code}: not an anomstream worker, or one without /status"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StatusUnavailable(
            f"cannot reach the worker at {where}: {reason} (is `anomstream worker` running? "
            "it serves on ANOMSTREAM_METRICS_PORT, 9464 by default)"
        ) from None
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict) or "uptime_s" not in document:
        raise StatusUnavailable(f"{where} did not answer with a worker's status document")
    return document


def wait_status(url: str, wait: float, poll: float = 0.5) -> dict[str, Any]:
    """The document once the worker is ready, or the last one seen after `wait` seconds (the
    caller tells a worker that is not ready); an unreachable worker raises after `wait`."""
    deadline = time.monotonic() + wait
    while True:
        try:
            document = fetch_status(url, timeout=min(5.0, max(wait, 0.5)))
        except StatusUnavailable:
            if time.monotonic() + poll > deadline:
                raise
        else:
            if document.get("ready") or time.monotonic() + poll > deadline:
                return document
        time.sleep(poll)


def duration(seconds: float) -> str:
    """75 -> `1m 15s`: how long, as a person says it."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0s"


def render(doc: dict[str, Any], console: Console) -> None:
    """The document as a header line, notes, and tables of warming sources, models and lag."""
    ready = "[green]ready[/]" if doc.get("ready") else "[red]not ready[/]"
    partitions = doc.get("partitions")
    held = "none yet" if partitions is None else ", ".join(map(str, partitions)) or "none"
    idempotence = "on" if doc.get("producer_idempotence") else "off"
    console.print(
        f"worker [bold]{doc.get('app_id', '?')}[/] {doc.get('version', '?')}: {ready}, "
        f"up {duration(float(doc.get('uptime_s', 0)))}, broker {doc.get('broker', '?')}, "
        f"topic {doc.get('topic', '?')}, partitions {held}, idempotence {idempotence}"
    )
    for note in doc.get("notes", []):
        console.print(f"[yellow]note:[/] {note}", markup=True, highlight=False)
    if "sources" not in doc:  # the worker answers before its first document
        console.print("the worker is starting: no status yet")
        return
    _sources(doc["sources"], console)
    _models(doc["models"], console)
    _lag(doc.get("consumer_lag"), console)


def _sources(sources: dict[str, Any], console: Console) -> None:
    console.print(
        f"{sources['held']} sources held (max {sources['max']}), {sources['warming']} warming up"
    )
    listed = sources.get("warming_listed", [])
    if not listed:
        return
    more = sources["warming"] - len(listed)
    table = Table(
        title="warming up" + (f" (first {len(listed)}, {more} more)" if more > 0 else ""),
        title_justify="left",
    )
    table.add_column("source")
    table.add_column("records", justify="right")
    table.add_column("needs", justify="right")
    table.add_column("signals holding it back (values still needed)")
    for row in listed:
        signals = ", ".join(f"{name} {n}" for name, n in row["signals"].items())
        table.add_row(row["source"], str(row["records"]), str(row["needs"]), signals or "-")
    console.print(table)


def _models(models: dict[str, Any], console: Console) -> None:
    loaded, refused = models.get("loaded", []), models.get("refused", [])
    if not loaded and not refused:
        console.print("models: none (univariate detectors only)")
    if loaded:
        table = Table(title="models", title_justify="left")
        for name in ("directory", "model", "serves sources", "signals"):
            table.add_column(name)
        table.add_column("serving now", justify="right")
        for m in loaded:
            table.add_row(
                m["directory"],
                f"{m['name']} {m['version']}",
                ", ".join(m["sources"]),
                ", ".join(m["signals"]),
                str(m["sources_served"]),
            )
        console.print(table)
    if refused:
        table = Table(title="models refused", title_justify="left")
        table.add_column("directory")
        table.add_column("why", style="red")
        for m in refused:
            table.add_row(m["directory"], m["reason"])
        console.print(table)


def _lag(lag: dict[str, int] | None, console: Console) -> None:
    if not lag:
        console.print("consumer lag: not known yet")
        return
    table = Table(title="consumer lag", title_justify="left")
    table.add_column("partition", justify="right")
    table.add_column("records behind", justify="right")
    for partition, records in lag.items():
        table.add_row(partition, str(records))
    console.print(table)
