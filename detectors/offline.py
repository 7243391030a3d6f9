"""Offline scoring of a file with the stream's code path: the same `Scorer`, suite, autoencoder
and fusion, fed in micro-batches, so `anomstream detect` and the worker agree record for record.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import replace
from typing import Any

from detectors.autoencoder import OnnxAutoencoder
from detectors.engine import Scorer, ScoringConfig
from detectors.messages import score_message
from detectors.models import ModelBook
from detectors.protocol import Detector
from detectors.records import Record
from detectors.results import Scored
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


def score_records(
    scorer: Scorer,
    records: Sequence[Record],
    batch: int = BATCH,
    states: MutableMapping[str, SourceState] | None = None,
) -> list[Scored]:
    """The results in order, scored in micro-batches from `states` (fresh ones by default),
    which end where a worker that had seen `records` would be. A record carrying an input offset
    its source has already applied is a replay: skipped, as the stream skips it."""
    states = {} if states is None else states
    out: list[Scored] = []
    for start in range(0, len(records), batch):
        results = scorer.score_batch(records[start : start + batch], states)
        out.extend(r for r in results if r is not None)
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
