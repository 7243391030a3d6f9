"""Operating modes: the set points a source runs at and has shown before, so that a switch
between them does not page, while what breaks within a mode still does.

Per source, a small memory of modes, each a centre and a within-mode scale per signal, learnt
online: a record belongs to the nearest mode whose median (over its signals) distance, in
that mode's scales, is below `MATCH` (the median, so one broken or lagging signal does not move
a record out of its mode); `CONFIRM` records in a row that belong to none, near each other,
found a new mode. It says, for an anomalous record, whether its evidence is what a recent
switch between known modes, a switch's first step (`_onset`) or a known dropout to zero
explains (`ModeMemory.track`), and such a record raises no event; and it marks the records of
a switch (`QUIET`) and of a dropout, which the calibrations do not learn (`quiet_steps`): a
switch's jump learnt as normal made a within-mode spike of ~20 noise deviations look ordinary.

How it fails: a broken value that happens to sit where the mode the source just left (or is
entering) sits, within `SETTLE` records of the switch, is taken for the switch; a mode shown
for fewer than `KNOWN` records is still new and pages; a source with more than `MAX_MODES`
recurring regimes forgets the least used one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from detectors.jit import kernel
from detectors.mode_kernels import (
    CAND_N,
    COLS,
    CURRENT,
    DROPOUT_RUN,
    DROPOUTS,
    EXPLAIN,
    FAR_FROM_ZERO,
    KNOWN,
    MATCH,
    MAX_MODES,
    MEMORY,
    ONSET_SIGNALS,
    PREVIOUS,
    QUIET,
    RAMP,
    SETTLE,
    SINCE,
    ZERO_RUN,
    _away,
    _candidate,
    _fits,
    _floor,
    _median_distance,
    _onset,
)

if TYPE_CHECKING:
    from detectors.batch import Layout, SourceBatch


@dataclass(slots=True)
class ModeMemory:
    """A source's modes: `centers`/`scales` (MAX_MODES x signals, NaN = unused), `counts`,
    the candidate mode being found, and `meta` (current and previous mode, records since the
    switch, candidate size, the current run of zeros, dropouts seen)."""

    centers: np.ndarray
    scales: np.ndarray
    counts: np.ndarray
    cand: np.ndarray
    cand_scale: np.ndarray
    meta: np.ndarray

    @classmethod
    def new(cls, k: int) -> ModeMemory:
        meta = np.zeros(COLS, dtype=np.int64)
        meta[CURRENT] = meta[PREVIOUS] = -1
        nan = np.full((MAX_MODES, k), np.nan)
        return cls(
            nan,
            nan.copy(),
            np.zeros(MAX_MODES, dtype=np.int64),
            np.full(k, np.nan),
            np.full(k, np.nan),
            meta,
        )

    def grow(self, k: int) -> None:
        """New signals of the source: columns that no mode has learnt yet."""
        extra = k - self.centers.shape[1]
        if extra <= 0:
            return
        pad = np.full((MAX_MODES, extra), np.nan)
        self.centers = np.concatenate([self.centers, pad], axis=1)
        self.scales = np.concatenate([self.scales, pad.copy()], axis=1)
        self.cand = np.concatenate([self.cand, np.full(extra, np.nan)])
        self.cand_scale = np.concatenate([self.cand_scale, np.full(extra, np.nan)])

    def copy(self) -> ModeMemory:
        return ModeMemory(
            self.centers.copy(),
            self.scales.copy(),
            self.counts.copy(),
            self.cand.copy(),
            self.cand_scale.copy(),
            self.meta.copy(),
        )

    def track(
        self, values: np.ndarray, evidence: np.ndarray, quiet: np.ndarray | None = None
    ) -> np.ndarray:
        """Learn from `values` (records x signals, NaN = missing), in order; per record, True
        where its `evidence` (records x signals: the signals that make it anomalous) is what a
        known dropout or a recent switch between known modes explains. `quiet` (records) is
        set where a switch between known modes or a dropout is under way (`QUIET`)."""
        self.grow(values.shape[1])
        out = np.zeros(len(values), dtype=np.bool_)
        if quiet is None:
            quiet = np.zeros(len(values), dtype=np.bool_)
        _track(
            values,
            evidence,
            self.centers,
            self.scales,
            self.counts,
            self.cand,
            self.cand_scale,
            self.meta,
            out,
            quiet,
        )
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "centers": [_floats(self.centers[m]) for m in range(MAX_MODES)],
            "scales": [_floats(self.scales[m]) for m in range(MAX_MODES)],
            "counts": self.counts.tolist(),
            "cand": _floats(self.cand),
            "cand_scale": _floats(self.cand_scale),
            "meta": self.meta.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], k: int) -> ModeMemory:
        mem = cls(
            _array(data["centers"]),
            _array(data["scales"]),
            np.asarray(data["counts"], dtype=np.int64),
            _array([data["cand"]])[0],
            _array([data["cand_scale"]])[0],
            np.asarray(data["meta"], dtype=np.int64),
        )
        if mem.centers.shape != (MAX_MODES, mem.cand.shape[0]) or len(mem.meta) != COLS:
            raise ValueError("mode memory of another layout")
        mem.grow(k)
        return mem


def _floats(row: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in row.tolist()]


def _array(rows: list[list[float | None]]) -> np.ndarray:
    return np.asarray([[np.nan if v is None else v for v in row] for row in rows], dtype=float)


@kernel
def _track(
    values: np.ndarray,
    evidence: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    counts: np.ndarray,
    cand: np.ndarray,
    cand_scale: np.ndarray,
    meta: np.ndarray,
    out: np.ndarray,
    quiet: np.ndarray,
) -> None:
    n_modes, k = centers.shape
    for t in range(values.shape[0]):
        x = values[t].copy()
        zero = False  # exact zeros far from the mode: a dropout, not a level (not learnt)
        ref = meta[CURRENT] if meta[CURRENT] >= 0 else meta[PREVIOUS]
        for j in range(k):
            if (
                x[j] == 0.0
                and ref >= 0
                and not np.isnan(centers[ref, j])
                and abs(centers[ref, j]) > FAR_FROM_ZERO * scales[ref, j]
            ):
                zero = True
                x[j] = np.nan
        back = False
        if zero:
            quiet[t] = k >= ONSET_SIGNALS
            meta[ZERO_RUN] += 1
            if meta[ZERO_RUN] <= DROPOUT_RUN and meta[DROPOUTS] > 0:
                out[t] = _fits(values[t], evidence[t], x, centers, scales, counts, ref, ref)
            meta[SINCE] += 1
            continue
        if meta[ZERO_RUN] > 0:  # a run of zeros ended: the record after it comes back
            if meta[ZERO_RUN] <= DROPOUT_RUN:
                back = meta[DROPOUTS] > 0
                meta[DROPOUTS] += 1
            meta[ZERO_RUN] = 0
        best, best_d = -1, np.inf
        for m in range(n_modes):
            if counts[m] > 0:
                d = _median_distance(x, centers[m], scales[m])
                if d < best_d:
                    best, best_d = m, d
        if best >= 0 and best_d < MATCH:
            if best != meta[CURRENT]:
                if meta[CURRENT] >= 0:
                    meta[PREVIOUS] = meta[CURRENT]
                meta[CURRENT] = best
                meta[SINCE] = 0
            counts[best] += 1
            a = 1.0 / min(counts[best], MEMORY)
            settled = meta[SINCE] >= RAMP  # a lagging signal is not the mode's level yet
            for j in range(k):
                if np.isnan(x[j]):
                    continue
                if np.isnan(centers[best, j]):  # a signal new to this mode
                    centers[best, j] = x[j]
                    scales[best, j] = _floor(0.0, x[j]) * 100
                    continue
                s = scales[best, j]
                r = min(max(x[j] - centers[best, j], -EXPLAIN * s), EXPLAIN * s)
                if not settled:
                    continue
                centers[best, j] += a * r
                scales[best, j] = _floor(s + a * (abs(r) - s), centers[best, j])
            meta[CAND_N] = 0
        else:
            if meta[CURRENT] >= 0:
                meta[PREVIOUS] = meta[CURRENT]
                meta[CURRENT] = -1
                meta[SINCE] = 0
            _candidate(x, centers, scales, counts, cand, cand_scale, meta)
        meta[SINCE] += 1
        cur, prev = meta[CURRENT], meta[PREVIOUS]
        if k >= ONSET_SIGNALS and (
            back
            or (
                prev >= 0
                and counts[prev] >= KNOWN
                and cur != prev
                and meta[SINCE] <= QUIET
                and _away(x, centers, scales, prev) >= ONSET_SIGNALS
            )
        ):
            quiet[t] = True
        switching = prev >= 0 and counts[prev] >= KNOWN and cur != prev
        if back and cur >= 0 and counts[cur] >= KNOWN:
            out[t] = _fits(x, evidence[t], x, centers, scales, counts, cur, cur)
        elif switching and cur >= 0 and counts[cur] >= KNOWN and meta[SINCE] <= SETTLE:
            if meta[SINCE] <= RAMP:  # a ramp may pass through a mode on its way to another
                out[t] = _fits(x, evidence[t], x, centers, scales, counts, -1, prev)
            else:
                out[t] = _fits(x, evidence[t], x, centers, scales, counts, cur, cur)
        elif switching and cur < 0 and meta[SINCE] <= RAMP:
            out[t] = _fits(x, evidence[t], x, centers, scales, counts, -1, prev)
        elif cur >= 0 and counts[cur] >= KNOWN:
            to = _onset(x, centers, scales, counts, cur)
            if to >= 0:  # still in its mode, already on its way to another known one
                quiet[t] = True
                out[t] = _fits(x, evidence[t], x, centers, scales, counts, cur, to)


def quiet_steps(groups: Sequence[SourceBatch], layout: Layout) -> np.ndarray:
    """Per step and source of a part: whether a switch between known modes or a dropout is
    under way at the record, from a copy of each source's memory (`explain` then learns the
    same records in the same order), so that the calibrations leave those records out."""
    out = np.zeros((layout.values.shape[0], len(groups)), dtype=np.bool_)
    for j, group in enumerate(groups):
        n = len(group.rows)
        a, b = int(layout.offsets[j]), int(layout.offsets[j + 1])
        mem = group.state.modes
        mem = ModeMemory.new(b - a) if mem is None else mem.copy()
        rows = np.flatnonzero(~layout.late[:n, j])
        values = layout.values[rows, a:b]
        quiet = np.zeros(len(values), dtype=np.bool_)
        mem.track(values, np.zeros(values.shape, dtype=np.bool_), quiet)
        out[rows, j] = quiet
    return out


def explain(
    groups: Sequence[SourceBatch],
    layout: Layout,
    p_sig: np.ndarray,
    level: np.ndarray,
    blocking: np.ndarray | None,
) -> list[list[bool]]:
    """Per source of a scored part, per record: whether a known switch or dropout explains
    what made it anomalous (its signals with p at or below their per-test `level`), unless a
    detector no switch explains fired on it (`blocking`: steps x series, the lowest p of
    those, e.g. `stuck`: a frozen value sits in its mode, frozen is still broken). Each
    source's memory learns from its records in order (late ones neither learn nor are
    explained), so the marks do not depend on how the stream was cut into batches."""
    out = []
    for j, group in enumerate(groups):
        n = len(group.rows)
        a, b = int(layout.offsets[j]), int(layout.offsets[j + 1])
        state = group.state
        if state.modes is None:
            state.modes = ModeMemory.new(b - a)
        marks = np.zeros(n, dtype=np.bool_)
        learn = ~layout.late[:n, j]
        keep = learn.copy()
        values, evidence = layout.values[:n, a:b], p_sig[:n, a:b] <= level[a:b]
        if blocking is not None:
            keep = keep & ~(blocking[:n, a:b] <= level[a:b]).any(axis=1)
        if learn.all():
            marks = state.modes.track(values, evidence)
        else:
            marks[learn] = state.modes.track(values[learn], evidence[learn])
        marks &= keep
        out.append(marks.tolist())
    return out
