"""A micro-batch laid out for scoring: records grouped by source, replays dropped, values in a
(steps x series) matrix, and every source's state gathered into one pair of blocks.

Series are every signal of every source in the batch; step `t` of a source is its `t`-th record
taken, so each series sees only its own values, in order, whatever the batch.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from detectors.protocol import Detector
from detectors.records import Record
from detectors.source_state import SourceState
from detectors.state import Packing, State


@dataclass(slots=True)
class SourceBatch:
    """One source's part of a batch: its state and the records taken from the batch."""

    source: str
    state: SourceState
    rows: list[int] = field(default_factory=list)
    """Indexes into the batch of the records to score, in order."""
    taken: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Partition -> (offset, index) of the last record taken in this batch."""


class Layout(NamedTuple):
    """The batch's numbers, one column per series (values) or per source (the others)."""

    values: np.ndarray
    """(steps, series): NaN where a record has no value (or the source no record)."""
    times: np.ndarray
    """(steps, sources): the records' timestamps."""
    learnable: np.ndarray
    """(steps, sources): in order (not late), so the detectors may learn from it."""
    late: np.ndarray
    """(steps, sources): at or before the source's last timestamp."""
    sizes: list[int]
    """Per source: its series."""
    offsets: np.ndarray
    """Per source: its first series (and the total at the end)."""


class Blocks(NamedTuple):
    """Every source's state numbers in two blocks, and each detector's and calibration's
    `State` as views into them (what the detectors see)."""

    scalars: np.ndarray
    wide: np.ndarray
    views: list[State]
    slots: list[State]
    detectors: list[State]
    calibrations: list[State]


def group_batch(
    records: Sequence[Record],
    states: MutableMapping[str, SourceState],
    suite: Sequence[Detector],
    new_source: Callable[[], SourceState],
) -> list[SourceBatch]:
    """The batch's sources with records to score; replays and in-batch duplicates skipped."""
    by_source: dict[str, SourceBatch] = {}
    for i, rec in enumerate(records):
        group = by_source.get(rec.source)
        if group is None:
            state = states.get(rec.source)
            if state is None:
                state = states[rec.source] = new_source()
            group = by_source[rec.source] = SourceBatch(rec.source, state)
        origin = rec.origin
        if origin is not None:
            if origin.offset <= group.state.applied.get(origin.partition, -1):
                continue  # replayed: its results were acknowledged before the state was saved
            position = (origin.offset, origin.item)
            last = group.taken.get(origin.partition)
            if last is not None and position <= last:
                continue  # delivered twice within this batch
            group.taken[origin.partition] = position
        group.rows.append(i)
    groups = [g for g in by_source.values() if g.rows]
    for g in groups:
        names: dict[str, None] = {}
        for i in g.rows:
            names.update(dict.fromkeys(records[i].signals))
        g.state.add_signals(list(names), suite)
    return groups


def lay_out(groups: Sequence[SourceBatch], records: Sequence[Record]) -> Layout:
    """The (steps x series) matrix of the groups' values, and per step and source its time."""
    sizes = [len(g.state.signals) for g in groups]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
    steps = max(len(g.rows) for g in groups)
    n_series = int(offsets[-1])
    values = np.full((steps, n_series), np.nan)
    times = np.zeros((steps, len(groups)))
    learnable = np.zeros((steps, len(groups)), dtype=bool)
    late = np.zeros((steps, len(groups)), dtype=bool)
    for j, group in enumerate(groups):
        _fill(group, records, values, times, learnable, late, j, int(offsets[j]))
    return Layout(values, times, learnable, late, sizes, offsets)


def _fill(
    group: SourceBatch,
    records: Sequence[Record],
    values: np.ndarray,
    times: np.ndarray,
    learnable: np.ndarray,
    late: np.ndarray,
    j: int,
    base: int,
) -> None:
    index = group.state.index
    last_ts = group.state.last_ts
    for t, i in enumerate(group.rows):
        rec = records[i]
        row = values[t]
        for name, value in rec.signals.items():
            if value is not None:
                row[base + index[name]] = value
        times[t, j] = rec.ts
        is_late = rec.ts <= last_ts
        late[t, j] = is_late
        learnable[t, j] = not is_late
        if not is_late:
            last_ts = rec.ts


def gather(groups: Sequence[SourceBatch], packing: Packing, n_detectors: int) -> Blocks:
    """Every source's numbers in two blocks: the detectors see views into them."""
    if any(g.state.packing is not packing for g in groups):
        raise ValueError("a source state was built for another suite")
    scalars = np.concatenate([g.state.scalars for g in groups], axis=1)
    wide = np.concatenate([g.state.wide for g in groups], axis=0)
    views = packing.views(scalars, wide)
    slots = [dict(view) for view in views]
    return Blocks(scalars, wide, views, slots, slots[:n_detectors], slots[n_detectors:])


def scatter(
    groups: Sequence[SourceBatch], blocks: Blocks, packing: Packing, offsets: np.ndarray
) -> None:
    """Each source's part of the blocks back into its state (fields a detector replaced first)."""
    packing.write_back(blocks.slots, blocks.views)
    scalars, wide = blocks.scalars, blocks.wide
    for j, g in enumerate(groups):  # copies: a view would keep the whole batch alive
        a, b = int(offsets[j]), int(offsets[j + 1])
        g.state.scalars = scalars[:, a:b].copy()
        g.state.wide = wide[a:b].copy()
