"""Collecting a scored batch into per-record results.

The batch's arrays become lists once (`Columns` per series, `RecordColumns` per source); each
record's `Scored` then points into them, and the alerting policy (`detectors.alerting`), the
source's episode (`detectors.episodes`) and its bookkeeping (records, last time, applied
offsets) are updated record by record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from detectors.alerting import escalate
from detectors.batch import SourceBatch
from detectors.config import ScoringConfig
from detectors.episodes import advance, gap_of
from detectors.model_verdicts import Verdicts
from detectors.records import Record
from detectors.results import Columns, Scored, SignalRows
from detectors.steps import StepOutputs, SuitePlan


class RecordColumns(NamedTuple):
    """Per source, per step: what the step loop said of its record, as lists."""

    p: list[list[float]]
    p_alert: list[list[float]]
    warming: list[list[bool]]
    late: list[list[bool]]


def record_columns(out: StepOutputs, late: np.ndarray) -> RecordColumns:
    """Each converted once for the whole batch."""
    return RecordColumns(
        out.p_rec.T.tolist(), out.p_alert.T.tolist(), out.warming.T.tolist(), late.T.tolist()
    )


def _finite_or_none(values: np.ndarray) -> list[list[float | None]]:
    """Rows of floats with NaN and infinities as None, converted for a whole batch at once."""
    rows = values.astype(object)
    rows[~np.isfinite(values)] = None
    out: list[list[float | None]] = rows.tolist()
    return out


def _absent(tested: Sequence[str], sent: Sequence[str]) -> list[str]:
    present = set(sent)
    return [name for name in tested if name not in present]


NAME_CACHE = 20_000
"""Signal names whose keys are kept: names come and go with sources, the cache must not grow."""


class DetectorKeys:
    """`signal/kind` for each detector kind: the score message's `detectors` keys (cached)."""

    __slots__ = ("_keys", "_kinds")

    def __init__(self, kinds: Sequence[str]) -> None:
        self._kinds = list(kinds)
        self._keys: dict[str, list[str]] = {}

    def of(self, name: str) -> list[str]:
        keys = self._keys.get(name)
        if keys is None:
            if len(self._keys) >= NAME_CACHE:
                self._keys.clear()
            keys = self._keys[name] = [f"{name}/{kind}" for kind in self._kinds]
        return keys


def table(
    plan: SuitePlan,
    keys: DetectorKeys,
    groups: Sequence[SourceBatch],
    out: StepOutputs,
) -> Columns:
    """The batch's per-signal results as lists, each array converted once."""
    p_det = out.p_det
    best_p = p_det.min(axis=1)
    # argmin over the detector axis, first minimum wins (np.argmin on a middle axis was much
    # slower than these few whole-array operations: docs/benchmarks.md)
    best = np.zeros(best_p.shape, dtype=np.intp)
    low = p_det[:, 0]
    for d in range(1, p_det.shape[1]):
        better = p_det[:, d] < low
        best[better] = d
        low = np.minimum(low, p_det[:, d])
    fired_mask = p_det < out.level
    fired_any: list[list[bool]] = fired_mask.any(axis=1).tolist()  # type: ignore[assignment]
    n_series = p_det.shape[2]
    return Columns(
        kinds=plan.kinds,
        keys=[keys.of(name) for g in groups for name in g.state.signals],
        p=out.p_sig.tolist(),
        best=best.tolist(),
        best_p=best_p.tolist(),
        fired_any=fired_any,
        fired_mask=fired_mask,
        expected=_finite_or_none(out.expected),
        lower=_finite_or_none(out.lower),
        upper=_finite_or_none(out.upper),
        periods=out.periods,
        period_moves=out.period_moves,
        model_col=[-1] * n_series,
        new=out.new.tolist(),
    )


def collect(
    cfg: ScoringConfig,
    group: SourceBatch,
    records: Sequence[Record],
    columns: RecordColumns,
    j: int,
    base: int,
    results: list[Scored | None],
    table: Columns,
    verdicts: Verdicts | None,
    explained: Sequence[bool] = (),
) -> None:
    """Group `j`'s records' results into `results`, in place; its source's bookkeeping too.
    `explained`: per record, a known mode switch or dropout explains it (no event)."""
    state = group.state
    p_rec: list[float] = columns.p[j]
    p_alert: list[float] = columns.p_alert[j]
    warming: list[bool] = columns.warming[j]
    is_late: list[bool] = columns.late[j]
    index = state.index
    model_label = None if verdicts is None else verdicts.labels[j]
    tested = list(state.signals)
    model_p: list[float] = []
    if verdicts is not None and model_label is not None:
        for name, c in (verdicts.columns[j] or {}).items():
            if name in index:
                table.model_col[base + index[name]] = c
            else:
                tested.append(name)  # the model needs it, the source never sent it
        model_p, grid_row, member = verdicts.p[j], verdicts.row[j], verdicts.member[j]
        shares, recon = verdicts.shares[j], verdicts.recon[j]
    positions: dict[tuple[str, ...], list[int]] = {}
    """Signal names in a record's order -> their series (records of a source look alike)."""
    realert_after = cfg.realert_after
    target_fap, gap = cfg.target_fap, gap_of(cfg)
    for t, i in enumerate(group.rows):
        rec = records[i]
        values: list[float] = list(rec.signals.values())  # type: ignore[arg-type]
        if None in values:  # missing values: not scored, listed as missing
            sent = [name for name, v in rec.signals.items() if v is not None]
            values = [v for v in values if v is not None]
        else:
            sent = list(rec.signals)
        key = tuple(sent)
        cols = positions.get(key)
        if cols is None:
            cols = positions[key] = [base + index[name] for name in sent]
        judged = None  # the model's p, where it judged this record
        share_t = recon_t = None
        if model_p and model_p[t] == model_p[t]:  # not NaN
            r = grid_row[t]
            judged, share_t, recon_t = model_p[t], shares[r][member], recon[r][member]
        p = p_rec[t]
        switch = bool(explained) and explained[t]
        anomalous = p <= cfg.target_fap and not warming[t] and bool(sent)
        scored = Scored(
            record=rec,
            score=1.0 - p,
            p=p,
            is_anomaly=anomalous,
            alert_p=p_alert[t],
            alertable=anomalous and p_alert[t] <= cfg.target_fap and not switch,
            warming_up=warming[t],
            late=is_late[t],
            missing=[] if len(sent) == len(tested) else _absent(tested, sent),
            rows=SignalRows(table, t, sent, values, cols, share_t, recon_t),
            model=model_label,
            model_p=judged,
        )
        if anomalous or state.episode is not None:
            advance(state, scored, target_fap, gap)
        if not scored.warming_up and not switch:
            scored.escalated = escalate(state, p_alert[t], realert_after)
        results[i] = scored
        state.records += 1
        if not is_late[t]:
            state.last_ts = rec.ts
        origin = rec.origin
        if origin is not None:
            at = (origin.topic, origin.partition)
            if state.applied.get(at, -1) < origin.offset:
                state.applied[at] = origin.offset
