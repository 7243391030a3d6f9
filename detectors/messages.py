"""Score messages and anomaly events, as plain dicts matching `schemas/`.

Pure functions of a `Scored` result, so the stream, offline scoring and the tests build the very
same messages. Event ids hash source, time and kind: a replay after a crash emits the same ids,
which lets consumers drop duplicates.
"""

from __future__ import annotations

import math
from hashlib import blake2b
from typing import Any

from detectors.engine import Scored, ScoringConfig, SignalResult
from detectors.fusion import severity

MAX_EVENT_SIGNALS = 10


def _provenance(scored: Scored) -> dict[str, Any] | None:
    origin = scored.record.origin
    if origin is None:
        return None
    out: dict[str, Any] = {
        "topic": origin.topic,
        "partition": origin.partition,
        "offset": origin.offset,
    }
    if origin.item:
        out["index"] = origin.item
    return out


def _flags(scored: Scored, msg: dict[str, Any]) -> None:
    if scored.late:
        msg["late"] = True
    if scored.missing:
        msg["missing"] = scored.missing


def score_message(
    scored: Scored, config: ScoringConfig, model: str | None = None
) -> dict[str, Any]:
    """Exactly one per input record."""
    rec = scored.record
    signals: dict[str, Any] = {}
    detectors: dict[str, float] = {}
    for s in scored.signals:
        signals[s.name] = {
            "value": s.value,
            "score": s.score,
            "expected": s.expected,
            "lower": s.lower,
            "upper": s.upper,
        }
        detectors[f"{s.name}/{s.detector}"] = s.detector_score
    msg: dict[str, Any] = {
        "source": rec.source,
        "ts": rec.ts_text,
        "score": scored.score,
        "is_anomaly": scored.is_anomaly,
        "threshold": config.threshold,
        "model": model,
        "detectors": detectors,
        "signals": signals,
        "check_failures": [],
        "warming_up": scored.warming_up,
    }
    provenance = _provenance(scored)
    if provenance is not None:
        msg["input"] = provenance
    _flags(scored, msg)
    return msg


def event_id(source: str, ts_text: str, kind: str) -> str:
    return blake2b(f"{source}|{ts_text}|{kind}".encode(), digest_size=16).hexdigest()


def contributions(signals: list[SignalResult]) -> list[tuple[SignalResult, float]]:
    """Share of each signal in the evidence (-log p), largest first: which signal caused it."""
    weights = [(s, -math.log(max(s.p, 1e-300)) if s.p < 0.5 else 0.0) for s in signals]
    total = sum(w for _, w in weights)
    if total <= 0:
        return [(s, 0.0) for s, _ in weights]
    ranked = [(s, w / total) for s, w in weights]
    ranked.sort(key=lambda item: (-item[1], item[0].p))
    return ranked


def anomaly_event(
    scored: Scored, config: ScoringConfig, model: str | None = None
) -> dict[str, Any]:
    """The event for a record whose score crossed the threshold."""
    rec = scored.record
    ranked = contributions(scored.signals)[:MAX_EVENT_SIGNALS]
    fired: list[str] = []
    for s, share in ranked:
        if share > 0:
            fired.extend(f"{s.name}/{kind}" for kind in (s.fired or (s.detector,)))
    event: dict[str, Any] = {
        "id": event_id(rec.source, rec.ts_text, "score"),
        "source": rec.source,
        "ts": rec.ts_text,
        "kind": "score",
        "severity": severity(scored.p, config.target_fap),
        "score": scored.score,
        "episode": scored.episode,
        "signals": [
            {
                "name": s.name,
                "value": s.value,
                "expected": s.expected,
                "score": s.score,
                "contribution": share,
            }
            for s, share in ranked
        ],
        "detectors": fired,
        "check_failures": [],
        "model": model,
    }
    provenance = _provenance(scored)
    if provenance is not None:
        event["input"] = provenance
    _flags(scored, event)
    return event
