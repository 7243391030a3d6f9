"""The autoencoder stage: each model's verdict on the batch's records, fused into theirs.

After the step loop, so that a record's missing values are imputed from the univariate
detectors' expected values; one inference per model for every source it serves. A model whose
inference raises is quarantined (`ModelBook.quarantine`) and the batch is scored without it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detectors.autoencoder import OnnxAutoencoder, WindowState, impute, score_sources
from detectors.batch import SourceBatch
from detectors.fusion import sidak
from detectors.models import ModelBook
from detectors.steps import StepOutputs

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Verdicts:
    """The models' verdicts on a batch's records, per (step, group), converted to lists once."""

    labels: list[str | None]
    """Per group: the label of the model that serves it."""
    columns: list[dict[str, int] | None]
    """Per group: the model's column of each of its signals."""
    p: list[list[float]]
    """Per group, per step: the model's p where it judged, NaN elsewhere."""
    row: list[list[int]]
    """Per group, per step: the record's row in its model's grid (-1: late, not windowed)."""
    member: list[int]
    """Per group: its column in its model's grid."""
    shares: list[list[list[list[float]]]]
    """Per group: its model's grid of error shares, (rows, members, k), as lists."""
    recon: list[list[list[list[float]]]]
    """Per group: its model's grid of reconstructions, as lists."""


def autoencode(
    models: ModelBook,
    groups: Sequence[SourceBatch],
    values: np.ndarray,
    out: StepOutputs,
    late: np.ndarray,
    offsets: np.ndarray,
) -> Verdicts | None:
    """The autoencoder's verdict on each group's in-order records, one inference per model,
    fused into `out.p_rec` (and `out.p_alert`) as one more Šidák test.

    Missing values are imputed from the univariate detectors' expected values; late records
    are not windowed (their place in the sequence has passed).
    """
    served: dict[str, tuple[OnnxAutoencoder, list[int]]] = {}
    for j, group in enumerate(groups):
        model = models.for_source(group.source)
        state = group.state
        if model is None:
            state.window = None
            continue
        state.window = WindowState.new(model) if state.window is None else state.window.adopt(model)
        served.setdefault(model.label, (model, []))[1].append(j)
    if not served:
        return None
    n_steps, n_groups = late.shape
    p_model = np.full((n_steps, n_groups), np.nan)
    grid_row = np.full((n_steps, n_groups), -1, dtype=np.intp)
    none: list[list[list[float]]] = []
    verdicts = Verdicts(
        labels=[None] * n_groups,
        columns=[None] * n_groups,
        p=[],
        row=[],
        member=[0] * n_groups,
        shares=[none] * n_groups,
        recon=[none] * n_groups,
    )
    for model, members in served.values():
        spec = model.spec
        k = len(spec.signals)
        # The batch's (steps x series) matrix already holds the values: one gather takes
        # every member source's columns in the model's order (-1: never sent, missing).
        cols = np.full((len(members), k), -1, dtype=np.intp)
        for a, j in enumerate(members):
            index, base = groups[j].state.index, int(offsets[j])
            for c, name in enumerate(spec.signals):
                col = index.get(name)
                if col is not None:
                    cols[a, c] = base + col
        flat = cols.ravel()
        known = flat >= 0
        taken = np.full((len(values), flat.size), np.nan)
        taken[:, known] = values[:, flat[known]]
        expected = np.full_like(taken, np.nan)
        expected[:, known] = out.expected[:, flat[known]]
        block = taken.reshape(-1, len(members), k)
        guess = expected.reshape(-1, len(members), k)
        counts = np.array([len(groups[j].rows) for j in members])
        taken_rows = np.arange(n_steps)[:, None] < counts[None, :]  # (steps, members)
        gaps = np.isnan(block)
        holed: list[bool] = (gaps.any(axis=2) & taken_rows).any(axis=0).tolist()  # type: ignore[assignment]
        any_late: list[bool] = late[:, members].any(axis=0).tolist()  # type: ignore[assignment]
        all_rows, all_gaps = [], []
        for a, j in enumerate(members):
            n = int(counts[a])
            if any_late[a]:  # late records are not windowed: the in-order ones are
                steps = np.flatnonzero(~late[:n, j])
                rows, fallback, holes = block[steps, a], guess[steps, a], gaps[steps, a]
                grid_row[steps, j] = np.arange(len(steps))
            else:
                rows, fallback, holes = block[:n, a], guess[:n, a], gaps[:n, a]
                grid_row[:n, j] = np.arange(n)
            if holed[a]:
                window = groups[j].state.window
                last = window.rows[-1] if window is not None and len(window.rows) else None
                impute(rows, fallback, np.full(k, np.nan) if last is None else last, spec.center)
            all_rows.append(rows)
            all_gaps.append(holes)
        states = [groups[j].state.window for j in members]
        try:
            grid = score_sources(model, [s for s in states if s is not None], all_rows, all_gaps)
        except Exception as exc:  # a model that fails at run time is dropped, not the worker
            text = str(exc).strip()
            reason = text.splitlines()[0][:200] if text else type(exc).__name__
            log.error("model %s quarantined: inference fails (%s)", model.label, reason)
            models.quarantine(model, f"inference fails: {reason}")
            grid_row[:, members] = -1
            for j in members:  # the batch is scored without it
                groups[j].state.window = None
            continue
        # each member's records: their grid rows, and the model's p where it judged
        rows_of = grid_row[:, members]
        taken_at = rows_of >= 0
        judged_p = np.where(grid.judged, grid.p, np.nan)
        picked = judged_p[np.maximum(rows_of, 0), np.arange(len(members))[None, :]]
        p_model[:, members] = np.where(taken_at, picked, np.nan)
        shares, recon = grid.share.tolist(), grid.expected.tolist()
        column = {name: c for c, name in enumerate(spec.signals)}
        for a, j in enumerate(members):
            verdicts.labels[j], verdicts.columns[j] = model.label, column
            verdicts.member[j], verdicts.shares[j], verdicts.recon[j] = a, shares, recon
    # One more test per record: Šidák over the suite's and the model's p, for the whole
    # batch at once (per record, numpy's scalar overhead dominated).
    has = np.isfinite(p_model)
    verdict = np.where(has, p_model, 1.0)
    # the model has no notion of known values: alerts see its verdict as records do
    out.p_rec = np.where(has, sidak(np.minimum(out.p_rec, verdict), 2), out.p_rec)
    out.p_alert = np.where(has, sidak(np.minimum(out.p_alert, verdict), 2), out.p_alert)
    verdicts.p = p_model.T.tolist()
    verdicts.row = grid_row.T.tolist()
    return verdicts
