"""Offline scoring of a file with the stream's code path: the same `Scorer`, suite, autoencoder
and fusion, fed in micro-batches, so `anomstream detect` and the worker agree record for record,
events and episodes included (`events`, `episodes`: the processor's rules and messages, in its
order).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import replace
from typing import Any

from detectors.autoencoder import OnnxAutoencoder
from detectors.engine import Scorer, ScoringConfig
from detectors.episodes import episode_messages
from detectors.messages import anomaly_event, score_message
from detectors.models import ModelBook
from detectors.protocol import Detector
from detectors.records import Record
from detectors.results import Scored
from detectors.rules import RuleBook
from detectors.source_state import SourceState

BATCH = 500


def scorer_for(
    model: OnnxAutoencoder | None,
    config: ScoringConfig,
    suite: Sequence[Detector] | None = None,
    rules: RuleBook | None = None,
) -> Scorer:
    """The stream's scorer (`suite`: default, the stream's) with `model` serving every source,
    and `rules` judging every record."""
    if model is None:
        return Scorer(config, suite, rules=rules)
    every = model.with_spec(replace(model.spec, sources=("*",)))
    return Scorer(config, suite, models=ModelBook(None, [every]), rules=rules)


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


def events(
    scored: Sequence[Scored], config: ScoringConfig, model: str | None = None
) -> dict[int, dict[str, Any]]:
    """The anomaly events the stream publishes for these results, by position in `scored`, in
    the stream's order: one per result with `alert` set, built by `anomaly_event` with the
    processor's arguments (`model`: its `Processor.model`, None in the worker). Records without
    an input position (a file) get ids hashed from source, ts and kind (docs/messages.md)."""
    return {i: anomaly_event(res, config, model) for i, res in enumerate(scored) if res.alert}


def episodes(scored: Sequence[Scored]) -> list[dict[str, Any]]:
    """The episode messages the stream publishes for these results, in its order (built while
    scoring, `detectors.episodes`). An episode still open at the end has no close: a stream
    that had read only these records would not have closed it either."""
    return episode_messages(scored)


def flat_rows(
    scored: Sequence[Scored],
    scorer: Scorer,
    found: Mapping[int, dict[str, Any]] | None = None,
) -> Iterator[dict[str, Any]]:
    """Score messages flattened to one CSV row each, with the record's event (`found`: the
    `events` of `scored`, computed when not given): `event` (its id), `severity`, `culprit`
    (its first signal by contribution) empty where it raised none, `episode` the id of an
    anomalous record's episode; with rules, `check_failures` and `check_unknown` (names, space
    separated); then `signal.field` columns per signal, empty where the message has null, its
    `period` as `signal.period_length` and `signal.period_unit` (scalars a spreadsheet reads;
    empty while the signal has no rhythm) when the suite finds rhythms."""
    found = events(scored, scorer.config) if found is None else found
    rhythmic = scorer.plan.rhythm >= 0
    for i, res in enumerate(scored):
        msg = score_message(res, scorer.config)
        event = found.get(i)
        row: dict[str, Any] = {
            "source": msg["source"],
            "ts": msg["ts"],
            "score": msg["score"],
            "is_anomaly": int(msg["is_anomaly"]),
            "warming_up": int(msg["warming_up"]),
            "model": msg["model"] or "",
            "model_score": msg["detectors"].get("autoencoder", ""),
            "missing": " ".join(msg.get("missing", [])),
            "event": event["id"] if event else "",
            "severity": event["severity"] if event else "",
            "episode": res.episode["id"] if res.is_anomaly and res.episode else "",
            "culprit": culprit(event),
        }
        if scorer.rules is not None:  # the rules' verdicts, names space-separated
            row["check_failures"] = " ".join(res.check_failures)
            row["check_unknown"] = " ".join(res.check_unknown)
        for name, entry in msg["signals"].items():
            for key, value in entry.items():
                if key != "period":
                    row[f"{name}.{key}"] = "" if value is None else value
            if rhythmic:
                period = entry.get("period")
                row[f"{name}.period_length"] = period["length"] if period else ""
                row[f"{name}.period_unit"] = period["unit"] if period else ""
        yield row


def culprit(event: Mapping[str, Any] | None) -> str:
    """The event's first signal by contribution (its cause), "" without an event or signals."""
    if not event or not event["signals"]:
        return ""
    return str(event["signals"][0]["name"])
