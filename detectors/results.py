"""What scoring says about a record: its result, and its signals' results.

A batch's per-signal results stay in per-step lists over all its series (`Columns`); a record
points into them (`SignalRows`). The score message is built from those directly; the
per-signal `SignalResult` objects are built only when asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from detectors.protocol import Period
from detectors.records import Record


class SignalResult(NamedTuple):
    """One signal of one record: its value, calibrated score and band, and what fired.

    A NamedTuple: one is built per signal per record, and that is the hot path.
    """

    name: str
    value: float
    score: float
    expected: float | None
    """None where unknown (JSON has no NaN)."""
    lower: float | None
    upper: float | None
    detector: str
    """Kind of the detector that found this value most extreme."""
    detector_score: float
    fired: tuple[str, ...]
    """Kinds whose own tail probability is below the per-test level."""
    p: float
    reconstruction: float | None = None
    """The autoencoder's reconstruction of this value (None without a model or a full window)."""
    contribution: float | None = None
    """This signal's share of the autoencoder's reconstruction error."""
    period: Period | None = None
    """The signal's rhythm, from the detector that describes rhythms (`describes_rhythm`)."""
    new: bool = False
    """The value lies where the signal has never been (`detectors.novelty`)."""


@dataclass(slots=True)
class Columns:
    """A batch's results as per-step lists over all its series, converted from the arrays
    once per batch: a record's signals are then list lookups (per-source conversions had a
    fixed cost that dominated small batches)."""

    kinds: list[str]
    keys: list[list[str]]
    """Series -> `signal/kind` per detector kind (the score message's `detectors` keys)."""
    p: list[list[float]]
    best: list[list[int]]
    best_p: list[list[float]]
    fired_any: list[list[bool]]
    fired_mask: np.ndarray
    """(steps, detectors, series): detectors whose own p is below the per-test level."""
    expected: list[list[float | None]]
    lower: list[list[float | None]]
    upper: list[list[float | None]]
    periods: list[Period | None]
    """Series -> its rhythm when the batch began (None: none, or no detector in the suite
    describes rhythms); `period` gives it at a step."""
    model_col: list[int]
    """Series -> the model's column (-1: no model uses it)."""
    new: list[list[bool]]
    """Per step, per series: the value lies where the signal has never been."""
    period_moves: dict[int, list[tuple[int, Period | None]]] = field(default_factory=dict)
    """Series -> (step, its rhythm from that step's record on), in step order, for the series
    whose rhythm the batch changed: few, so the rest cost nothing."""

    def period(self, t: int, c: int) -> Period | None:
        """Series `c`'s rhythm once step `t`'s record was learnt: what a batch of that record
        alone would say, so messages do not depend on how records were batched."""
        moves = self.period_moves.get(c)
        found = self.periods[c]
        if moves is not None:
            for step, period in moves:
                if step > t:
                    break
                found = period
        return found


class SignalRows:
    """One record's scored signals as positions (step `t`, series `cols`) in its batch's
    `Columns`, and the model's verdict on it where it judged the record (`share`: each model
    column's share of the error, `recon`: its reconstruction; the p is `Scored.model_p`).

    The score message is built from these directly (`detectors.messages`); `SignalResult`s
    are built only when asked for (events, offline tables, tests): one object per signal per
    record was a large share of the worker's time (docs/benchmarks.md).
    """

    __slots__ = ("_results", "cols", "names", "recon", "share", "t", "table", "values")

    def __init__(
        self,
        table: Columns,
        t: int,
        names: list[str],
        values: list[float],
        cols: list[int],
        share: list[float] | None = None,
        recon: list[float] | None = None,
    ) -> None:
        self.table, self.t, self.names, self.values, self.cols = table, t, names, values, cols
        self.share, self.recon = share, recon
        self._results: list[SignalResult] | None = None

    def results(self) -> list[SignalResult]:
        if self._results is None:
            self._results = [self._result(n, v, c) for n, v, c in self]
        return self._results

    def __iter__(self) -> Iterator[tuple[str, float, int]]:
        return zip(self.names, self.values, self.cols, strict=True)

    def _result(self, name: str, value: float, c: int) -> SignalResult:
        tb, t, share, recon = self.table, self.t, self.share, self.recon
        fired: tuple[str, ...] = ()
        if tb.fired_any[t][c]:
            fired = tuple(k for k, hit in zip(tb.kinds, tb.fired_mask[t, :, c], strict=True) if hit)
        mc = -1 if recon is None else tb.model_col[c]
        return SignalResult(
            name,
            value,
            1.0 - tb.p[t][c],
            tb.expected[t][c],
            tb.lower[t][c],
            tb.upper[t][c],
            tb.kinds[tb.best[t][c]],
            1.0 - tb.best_p[t][c],
            fired,
            tb.p[t][c],
            recon[mc] if recon is not None and mc >= 0 else None,
            share[mc] if share is not None and mc >= 0 else None,
            tb.period(t, c),
            tb.new[t][c],
        )


@dataclass(slots=True)
class Scored:
    """The result for one record."""

    record: Record
    score: float
    p: float
    is_anomaly: bool
    warming_up: bool
    late: bool
    missing: list[str]
    rows: SignalRows
    alert_p: float = 1.0
    """p as alerts see it (`ScoringConfig.known_factor`): escalation compares these."""
    alertable: bool = False
    """Anomalous by `alert_p` too: worth an event if it escalates."""
    episode: dict[str, Any] | None = None
    """The episode an anomalous record belongs to, as its event tells it: {"id", "start", "n"}."""
    episode_message: dict[str, Any] | None = None
    """The message this record sends to the episodes topic (`detectors.episodes`), if any."""
    escalated: bool = False
    """More extreme (by `alert_p`) than the source's last escalated record, or that was long
    ago."""
    model: str | None = None
    """Label of the autoencoder serving this source."""
    model_p: float | None = None
    """The autoencoder's tail probability (None before its window is full)."""
    check_failures: list[str] = field(default_factory=list)
    """Validation rules the record fails (`detectors.rules`)."""
    check_unknown: list[str] = field(default_factory=list)
    """Rules that could not judge it: a signal they read is missing."""
    rule_alert: list[str] = field(default_factory=list)
    """Rules failing here that did not fail on the source's previous record: a rule event."""
    rule_severity: str = "medium"
    """The highest severity among `rule_alert`'s rules."""

    @property
    def signals(self) -> list[SignalResult]:
        """The record's scored signals (missing ones left out), in the record's order."""
        return self.rows.results()

    @property
    def score_alert(self) -> bool:
        """An anomaly worth an event: a new one or a worse one, not its 50th repeat."""
        return self.alertable and self.escalated

    @property
    def alert(self) -> bool:
        """Worth an event: a score alert, or a rule that starts failing (`rule_alert`)."""
        return (self.alertable and self.escalated) or bool(self.rule_alert)
