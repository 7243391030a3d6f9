"""Offline scoring of a file with the stream's code path: the same `Scorer`, suite, autoencoder
and fusion, fed in micro-batches, so `anomstream detect` and the worker agree record for record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from detectors.autoencoder import OnnxAutoencoder
from detectors.engine import Scored, Scorer, ScoringConfig
from detectors.messages import score_message
from detectors.models import ModelBook
from detectors.protocol import Detector
from detectors.records import Record
from detectors.source_state import SourceState

BATCH = 500


def scorer_for(
    model: OnnxAutoencoder | None, config: ScoringConfig, suite: Sequence[Detector] | None = None
) -> Scorer:
    """The stream's scorer (`suite`: default, the stream's) with `model` serving every source."""
    if model is None:
        return Scorer(config, suite)
    every = model.with_spec(replace(model.spec, sources=("*",)))
    return Scorer(config, suite, models=ModelBook(None, [every]))


def score_records(scorer: Scorer, records: Sequence[Record], batch: int = BATCH) -> list[Scored]:
    """One result per record, in order (records carry no offsets, so none is a replay)."""
    states: dict[str, SourceState] = {}
    out: list[Scored] = []
    for start in range(0, len(records), batch):
        for res in scorer.score_batch(records[start : start + batch], states):
            if res is None:  # pragma: no cover - only records with offsets are replays
                raise AssertionError("a record without an offset was taken for a replay")
            out.append(res)
    return out


def flat_rows(scored: Sequence[Scored], scorer: Scorer) -> Iterator[dict[str, Any]]:
    """Score messages flattened to one CSV row each: `signal.field` columns per signal."""
    for res in scored:
        msg = score_message(res, scorer.config)
        row: dict[str, Any] = {
            "source": msg["source"],
            "ts": msg["ts"],
            "score": msg["score"],
            "is_anomaly": int(msg["is_anomaly"]),
            "warming_up": int(msg["warming_up"]),
            "model": msg["model"] or "",
            "model_score": msg["detectors"].get("autoencoder", ""),
            "missing": " ".join(msg.get("missing", [])),
        }
        for name, entry in msg["signals"].items():
            for key, value in entry.items():
                row[f"{name}.{key}"] = "" if value is None else value
        yield row
