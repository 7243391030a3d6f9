"""`anomstream tail`: pretty-print anomaly events, score messages or dead letters as they arrive."""

from __future__ import annotations

import time
from typing import Any

import orjson
from rich.console import Console
from rich.text import Text

from streams.clients import start_consumer
from streams.settings import Settings

SEVERITY_STYLE = {"low": "yellow", "medium": "dark_orange", "high": "red", "critical": "bold red"}


def format_event(event: dict[str, Any]) -> Text:
    """One line: time, source, severity, score, the signals that caused it."""
    line = Text()
    line.append(f"{event.get('ts', '?')}  ", style="dim")
    line.append(f"{event.get('source', '?'):<14} ", style="bold")
    sev = str(event.get("severity", "?"))
    line.append(f"{sev.upper():<8} ", style=SEVERITY_STYLE.get(sev, ""))
    line.append(f"{event.get('score', 0):.6f}  ")
    parts = []
    for s in event.get("signals", [])[:3]:
        if s.get("contribution", 0) <= 0:
            continue
        expected = s.get("expected")
        exp = f" (expected {expected:.4g})" if isinstance(expected, int | float) else ""
        parts.append(f"{s['name']}={s['value']:.4g}{exp} {100 * s['contribution']:.0f}%")
    line.append(", ".join(parts) or "-")
    episode = event.get("episode") or {}
    if episode:
        line.append(f"  episode {str(episode.get('id', ''))[:8]}#{episode.get('n')}", style="dim")
    return line


def format_score(msg: dict[str, Any]) -> Text:
    line = Text()
    line.append(f"{msg.get('ts', '?')}  ", style="dim")
    line.append(f"{msg.get('source', '?'):<14} ", style="bold")
    score = float(msg.get("score", 0.0))
    line.append(f"{score:.6f} ", style="red" if msg.get("is_anomaly") else "")
    if msg.get("is_anomaly"):
        line.append("ANOMALY ", style="bold red")
    if msg.get("warming_up"):
        line.append("warming ", style="dim")
    signals = msg.get("signals", {})
    top = sorted(signals.items(), key=lambda kv: -kv[1].get("score", 0.0))[:3]
    line.append(", ".join(f"{name}={s['value']:.4g} ({s['score']:.3f})" for name, s in top))
    return line


def format_dead_letter(value: bytes, headers: dict[str, str]) -> Text:
    line = Text()
    line.append(headers.get("error", "?"), style="red")
    topic, partition = headers.get("source_topic"), headers.get("source_partition")
    where = f"{topic}[{partition}]@{headers.get('source_offset')}"
    line.append(f"  {where}  ", style="dim")
    line.append(value[:80].decode("utf-8", "replace"))
    return line


async def tail(
    settings: Settings,
    what: str,
    from_beginning: bool,
    limit: int | None,
    idle_timeout: float | None,
    as_json: bool,
    console: Console | None = None,
) -> int:
    """Print messages until `limit` messages, `idle_timeout` seconds without any, or Ctrl-C."""
    console = console or Console(highlight=False)
    topic = {
        "anomalies": settings.kafka.topic_anomalies,
        "scores": settings.kafka.topic_scores,
        "dlq": settings.kafka.topic_dlq,
    }[what]
    consumer = await start_consumer(settings, [topic], from_beginning)
    shown = 0
    last = time.monotonic()
    try:
        while limit is None or shown < limit:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch:
                if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                    break
                continue
            last = time.monotonic()
            for messages in batch.values():
                for m in messages:
                    if limit is not None and shown >= limit:
                        break
                    shown += 1
                    headers = {k: v.decode("utf-8", "replace") for k, v in (m.headers or ())}
                    if as_json:
                        out = (
                            orjson.loads(m.value)
                            if what != "dlq"
                            else {**headers, "value": (m.value or b"").decode("utf-8", "replace")}
                        )
                        console.print_json(orjson.dumps(out).decode(), indent=None)
                    elif what == "anomalies":
                        console.print(format_event(orjson.loads(m.value)))
                    elif what == "scores":
                        console.print(format_score(orjson.loads(m.value)))
                    else:
                        console.print(format_dead_letter(m.value or b"", headers))
    finally:
        await consumer.stop()
    return shown
