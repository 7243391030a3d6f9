"""Scoring a micro-batch of records across sources: one time step at a time, all series at once.

The flow, top to bottom, one stage per module:

1. `detectors.batch`: group the batch by source and drop replays (records at or below the
   offset a source's state has applied on their topic), refuse records beyond a source's
   signal cap, split the sources into parts within a memory budget (`parts`: one part unless
   a few busy sources would pad every other source's series), and per part lay the values out
   as a (steps x series) matrix, series being every signal of every source in it, and gather
   the sources' states;
2. `detectors.steps`: per step, every detector's raw statistic, calibrated to a tail
   probability, fused per signal and per record, then learning (unless the record is late, or
   anomalous with the learning gate on);
3. `detectors.model_verdicts`: the autoencoder's verdict, fused in as one more test;
4. `detectors.collect`: per-record results, with the alerting policy of `detectors.alerting`.

Each series only ever sees its own values in order, so the scores do not depend on how records
were cut into batches: the stream, a replay after a crash and offline scoring agree exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from detectors.alerting import ESCALATION, P_FLOOR, episode_id
from detectors.batch import (
    CELL_SLACK,
    MAX_CELLS,
    Marks,
    SourceBatch,
    gather,
    group_batch,
    lay_out,
    parts,
    scatter,
)
from detectors.collect import DetectorKeys, collect, record_columns, table
from detectors.config import ScoringConfig
from detectors.model_verdicts import autoencode
from detectors.models import ModelBook
from detectors.modes import explain, quiet_steps
from detectors.protocol import Detector
from detectors.records import Invalid, Record
from detectors.registry import default_suite
from detectors.results import Scored
from detectors.rules import RuleBook
from detectors.rules_alerts import judge
from detectors.source_state import SourceState
from detectors.steps import Selection, SuitePlan, run_steps, signal_matches

__all__ = [
    "ESCALATION",
    "P_FLOOR",
    "BatchOutcome",
    "Scorer",
    "ScoringConfig",
    "episode_id",
    "signal_matches",
]
"""`Scorer` and `BatchOutcome` are this module's; the rest stay importable from here, where
they used to live."""


class BatchOutcome(NamedTuple):
    """A scored batch: a result per record (None: a replay, or refused), and what was not
    scored as usual, for the runtime to dead-letter, count and log."""

    results: list[Scored | None]
    rejected: list[tuple[int, Invalid]]
    """Batch index and why: records that would take their source past its signal cap."""
    resets: dict[tuple[str, int], int]
    """(Topic, partition) -> records scored although at or below their applied offset."""


class Scorer:
    """Scores micro-batches against per-source states (which it updates in place)."""

    def __init__(
        self,
        config: ScoringConfig,
        suite: Sequence[Detector] | None = None,
        models: ModelBook | None = None,
        rules: RuleBook | None = None,
    ) -> None:
        self.config = config
        self.models = models
        self.rules = rules if rules is not None and len(rules) else None
        """Validation rules judged on every record (`detectors.rules_alerts`)."""
        self.suite = list(suite) if suite is not None else default_suite()
        self.plan = SuitePlan.of(self.suite)
        """What the suite's detectors declare they can do, read once."""
        self.kinds = self.plan.kinds
        self.calibration = self.plan.calibration
        self.packing = self.plan.packing
        self._selection = Selection(self.plan.patterns)
        self._keys = DetectorKeys(self.kinds)
        self.max_cells = MAX_CELLS
        self.cell_slack = CELL_SLACK
        """A batch's sources are scored in parts within this budget (`detectors.batch.parts`)."""
        self._marks: dict[str, Marks] | None = None

    def prepare(self) -> None:
        """Compile the scoring loops now (or load them from numba's on-disk cache), so that no
        micro-batch waits for them: seconds on a fresh install.

        numba compiles a loop per array layout: a batch of one series hands the detectors
        contiguous rows, a batch of more series strided views, so both are scored here."""
        scorer = Scorer(self.config, self.suite)
        one = [Record("prepare", 0.0, "", {"x": 0.0})]
        more = [
            Record("prepare-a", 0.0, "", {"x": 0.0, "y": 0.0}),
            Record("prepare-b", 0.0, "", {"x": 0.0}),
        ]
        for batch in (one, more):
            scorer.score_batch(batch, {})
        for n in (1, 3):  # bands of detectors that describe a signal only once warm
            states = self.packing.views(*self.packing.new(n))
            for d, det in enumerate(self.suite):
                det.band(states[d], np.ones(n), np.zeros(n))

    def new_source(self) -> SourceState:
        return SourceState.new(self.suite)

    def forget(self, sources: Iterable[str]) -> None:
        """Sources evicted from the worker: whatever is cached for them goes too."""
        if self.models is not None:
            self.models.forget(sources)

    @contextmanager
    def chunks(self) -> Iterator[None]:
        """Within it, each `score` call is the next chunk of one batch, in record order:
        replays are judged by the marks the batch's sources had when it began, so the results
        are those of scoring the whole batch at once (even with an array message cut in two)."""
        self._marks = {}
        try:
            yield
        finally:
            self._marks = None

    def score_batch(
        self, records: Sequence[Record], states: MutableMapping[str, SourceState]
    ) -> list[Scored | None]:
        """Score `records` in order; `None` marks a replayed record that was already applied."""
        return self.score(records, states).results

    def score(
        self,
        records: Sequence[Record],
        states: MutableMapping[str, SourceState],
        max_signals: int | None = None,
    ) -> BatchOutcome:
        """Score `records` in order; a record that would give its source more than
        `max_signals` signal names is refused (`BatchOutcome.rejected`), not scored."""
        results: list[Scored | None] = [None] * len(records)
        groups, rejected, resets = group_batch(
            records, states, self.suite, self.new_source, max_signals, self._marks
        )
        outcome = BatchOutcome(results, rejected, resets)
        if groups:
            for part in parts(groups, self.max_cells, self.cell_slack):
                self._score_part(part, records, results)
        return outcome

    def _blocking(self, p_det: np.ndarray) -> np.ndarray | None:
        """Per step and series, the lowest p of the detectors whose verdict no mode switch
        explains (`Capabilities.switch_explains` False)."""
        rows = self.plan.unexplained
        if not rows:
            return None
        out: np.ndarray = p_det[:, rows, :].min(axis=1)
        return out

    def _score_part(
        self,
        groups: Sequence[SourceBatch],
        records: Sequence[Record],
        results: list[Scored | None],
    ) -> None:
        """Score these sources' records (a whole batch, or a part of it) into `results`."""
        layout = lay_out(groups, records)
        blocks = gather(groups, self.packing, len(self.suite))
        runs_on = self._selection.runs_on(
            [name for g in groups for name in g.state.signals] if self._selection.limited else ()
        )
        det_states = blocks.detectors
        quiet = quiet_steps(groups, layout)
        out = run_steps(
            self.plan, self.config, layout, det_states, blocks.calibrations, runs_on, quiet
        )
        scatter(groups, blocks, self.packing, layout.offsets)

        verdicts = None
        if self.models is not None:
            verdicts = autoencode(
                self.models, groups, layout.values, out, layout.late, layout.offsets
            )
        explained = explain(groups, layout, out.p_sig, out.level, self._blocking(out.p_det))
        columns = table(self.plan, self._keys, groups, out)
        per_record = record_columns(out, layout.late)
        for j, group in enumerate(groups):
            base = int(layout.offsets[j])
            collect(
                self.config,
                group,
                records,
                per_record,
                j,
                base,
                results,
                columns,
                verdicts,
                explained[j],
            )
        if self.rules is not None:
            judge(self.rules, groups, records, results, layout)
