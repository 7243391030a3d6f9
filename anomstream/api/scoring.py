"""Scoring for the API with `anomstream detect`'s code path, and what the answer says.

The composition is `detect`'s (anomstream/cli_models.py): `scorer_for` the chosen model (or
the worker's routing when none is named), `score_records` from fresh states (the call's
records are the whole history), `events` with the processor's rule, `score_message` per
result. Used by `POST /v1/detect` and by the job processes alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from anomstream.api.settings import sensitivity_fap
from detectors.autoencoder import OnnxAutoencoder
from detectors.config import ScoringConfig
from detectors.engine import Scorer
from detectors.messages import score_message
from detectors.models import ModelBook
from detectors.offline import events, flat_rows, score_records, scorer_for
from detectors.records import Record
from detectors.results import Scored
from detectors.rules import RuleBook
from detectors.source_state import SourceState

CHUNK = 5000
"""Records a job scores between progress reports (a multiple of `detectors.offline.BATCH`)."""


def choose_config(
    served: OnnxAutoencoder | None,
    target_fap: float | None,
    sensitivity: float | None,
    default_fap: float,
) -> ScoringConfig:
    """`detect`'s choice: the call's knob, else the model's own target_fap, else the default."""
    if sensitivity is not None:
        target_fap = sensitivity_fap(sensitivity)
    if target_fap is None:
        target_fap = default_fap if served is None else served.spec.info.get("target_fap")
    return ScoringConfig(target_fap=float(target_fap or default_fap))


def build_scorer(
    served: OnnxAutoencoder | None,
    book: ModelBook | None,
    config: ScoringConfig,
    rules: RuleBook | None = None,
) -> Scorer:
    """`detect`'s scorer for a named model; the worker's routing (`book`) otherwise; `rules`:
    the server's validation rules."""
    if served is not None:
        return scorer_for(served, config, rules=rules)
    return Scorer(config, None, models=book, rules=rules)


@dataclass(slots=True)
class Detection:
    """Scored records and their events (by position), as `detect` computes them."""

    scorer: Scorer
    scored: list[Scored]
    found: dict[int, dict[str, Any]]
    window: int | None
    """The named model's window: records a source needs before the model judges it."""

    @property
    def config(self) -> ScoringConfig:
        return self.scorer.config

    def messages(self) -> list[dict[str, Any]]:
        return [score_message(res, self.config) for res in self.scored]

    def events(self) -> list[dict[str, Any]]:
        return list(self.found.values())

    def rows(self) -> list[dict[str, Any]]:
        return list(flat_rows(self.scored, self.scorer, self.found))

    def summary(self) -> dict[str, Any]:
        scored = self.scored
        return {
            "records": len(scored),
            "sources": len({r.record.source for r in scored}),
            "anomalous": sum(r.is_anomaly for r in scored),
            "events": len(self.found),
            "warming_up": sum(r.warming_up for r in scored),
            "model_scored": sum(r.model_p is not None for r in scored),
            "check_failed": sum(bool(r.check_failures) for r in scored),
        }

    def notes(self) -> list[str]:
        """What a short call could judge: stated, so an empty answer is not read as 'fine'."""
        out = []
        figures = self.summary()
        warming = figures["warming_up"]
        if warming:
            out.append(
                f"{warming} of {figures['records']} records were scored while their source "
                f"warmed up (the detectors learn a source from at least its first "
                f"{self.config.warmup} values of each signal): they raise no events. The "
                "call's records are the whole history: send history before the records to "
                "judge, or a file as a job"
            )
        unjudged = figures["records"] - figures["model_scored"]
        models = {r.model for r in self.scored if r.model}
        if models and unjudged:
            window = f" (window {self.window})" if self.window else ""
            out.append(
                f"{unjudged} records came before their source had a full window of the "
                f"autoencoder{window}: the model did not judge them"
            )
        if not models:
            out.append("no autoencoder served these sources: univariate detectors only")
        return out


def detect(
    records: Sequence[Record],
    served: OnnxAutoencoder | None,
    book: ModelBook | None,
    config: ScoringConfig,
    progress: Callable[[int], None] | None = None,
    rules: RuleBook | None = None,
) -> Detection:
    """Score `records` from fresh states and raise their events, as `anomstream detect` does.

    `progress` (jobs) hears the records done after each chunk of `CHUNK`, and may raise to
    stop; chunks share the states, and scores do not depend on how records are cut into
    batches (detectors.engine), so the results are those of one call. `rules` fill
    `check_failures` and raise rule events, as in the worker."""
    scorer = build_scorer(served, book, config, rules)
    if progress is None:
        scored = score_records(scorer, records)
    else:
        states: dict[str, SourceState] = {}
        scored = []
        for start in range(0, len(records), CHUNK):
            scored += score_records(scorer, records[start : start + CHUNK], states=states)
            progress(len(scored))
    found = events(scored, config)  # the processor's: same function, same arguments
    return Detection(scorer, scored, found, None if served is None else served.spec.window)
