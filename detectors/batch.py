"""A micro-batch laid out for scoring: records grouped by source, replays dropped, values in a
(steps x series) matrix, and every source's state gathered into one pair of blocks.

Series are every signal of every source in the batch; step `t` of a source is its `t`-th record
taken, so each series sees only its own values, in order, whatever the batch.

A replay is a record at or below the offset its source's state applied on the same input topic
and partition, and no newer than the newest record the state learnt: every applied record is at
or before `last_ts`, so such a record may have been learnt and is skipped. A record below the
mark but newer than anything learnt cannot have been applied: its topic was recreated (offsets
start again) or its offsets reset. It is scored and counted (`Grouped.resets`), never dropped.
(Broker timestamps would not do: producers set them, in any order.) Only late records of a
recreated topic, below the old mark, are still taken for replays until its offsets pass it.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from detectors.protocol import Detector
from detectors.records import Invalid, Record
from detectors.source_state import SourceState
from detectors.state import Packing, State

MAX_CELLS = 250_000
"""Steps x series a part of a batch may lay out before its sources are split into parts:
~100 MB at most (measured ~400 bytes a cell at the peak: the detectors' p, bands and values as
arrays, then as the lists results are read from)."""
CELL_SLACK = 2.0
"""A part may also be this many times the cells its records fill (so a batch of evenly busy
sources, already O(records), is never split)."""


@dataclass(slots=True)
class SourceBatch:
    """One source's part of a batch: its state and the records taken from the batch."""

    source: str
    state: SourceState
    rows: list[int] = field(default_factory=list)
    """Indexes into the batch of the records to score, in order."""
    taken: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    """(Topic, partition) -> (offset, index) of the last record taken in this batch."""
    applied: dict[tuple[str, int], int] = field(default_factory=dict)
    """The offsets the state had applied when the batch began (what replays are judged by)."""
    last_ts: float = float("-inf")
    """The state's last time when the batch began."""


@dataclass(slots=True)
class Marks:
    """A source's replay marks as its batch found them, kept while a batch is scored in
    chunks: each chunk moves the state on (its applied offsets, last time), and a record of a
    later chunk (the rest of an array message, say) is judged as in the whole batch."""

    applied: dict[tuple[str, int], int]
    last_ts: float
    taken: dict[tuple[str, int], tuple[int, int]]


class Grouped(NamedTuple):
    """A batch by source, the records refused, and the records scored below an applied mark."""

    groups: list[SourceBatch]
    rejected: list[tuple[int, Invalid]]
    """Batch index and why: records that would take their source past its signal cap."""
    resets: dict[tuple[str, int], int]
    """(Topic, partition) -> records scored although at or below the applied offset."""


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
    max_signals: int | None = None,
    marks: dict[str, Marks] | None = None,
) -> Grouped:
    """The batch's sources with records to score; replays and in-batch duplicates skipped,
    records that would give their source more than `max_signals` signal names refused.
    `marks`: this is a chunk of a batch, judged by the marks its sources had when it began
    (taken from the states at their first chunk)."""
    by_source: dict[str, SourceBatch] = {}
    resets: dict[tuple[str, int], int] = {}
    for i, rec in enumerate(records):
        group = by_source.get(rec.source)
        if group is None:
            state = states.get(rec.source)
            if state is None:
                state = states[rec.source] = new_source()
            if state.legacy is not None and rec.origin is not None:
                state.adopt(rec.origin.topic)
            if marks is None:
                group = SourceBatch(rec.source, state, [], {}, state.applied, state.last_ts)
            else:
                m = marks.get(rec.source)
                if m is None:
                    m = marks[rec.source] = Marks(dict(state.applied), state.last_ts, {})
                group = SourceBatch(rec.source, state, [], m.taken, m.applied, m.last_ts)
            by_source[rec.source] = group
        origin = rec.origin
        if origin is not None:
            key = (origin.topic, origin.partition)
            if origin.offset <= group.applied.get(key, -1):
                if rec.ts <= group.last_ts:
                    continue  # replayed: its results were acknowledged before the state was saved
                resets[key] = resets.get(key, 0) + 1  # never applied: the topic starts again
            position = (origin.offset, origin.item)
            last = group.taken.get(key)
            if last is not None and position <= last:
                continue  # delivered twice within this batch
            group.taken[key] = position
        group.rows.append(i)
    rejected: list[tuple[int, Invalid]] = []
    groups = []
    for g in by_source.values():
        if not g.rows:
            continue
        index = g.state.index
        known = index.keys()
        fresh: dict[str, None] = {}
        for i in g.rows:
            sent = records[i].signals
            if not sent.keys() <= known:
                fresh.update(dict.fromkeys(n for n in sent if n not in index))
        if max_signals is not None and len(index) + len(fresh) > max_signals:
            fresh = _cap(g, records, max_signals, rejected)
        if fresh:
            g.state.add_signals(list(fresh), suite)
        if g.rows:
            groups.append(g)
    rejected.sort()
    return Grouped(groups, rejected, resets)


def _cap(
    group: SourceBatch,
    records: Sequence[Record],
    cap: int,
    rejected: list[tuple[int, Invalid]],
) -> dict[str, None]:
    """Drop, in order, the records that would take the source past `cap` signal names; the
    new names of those kept."""
    known = len(group.state.index)
    fresh: dict[str, None] = {}
    kept = []
    for i in group.rows:
        new = [n for n in records[i].signals if n not in group.state.index and n not in fresh]
        if new and known + len(fresh) + len(new) > cap:
            detail = (
                f"source {group.source!r} has {known + len(fresh)} signals and this record "
                f"adds {len(new)} ({', '.join(new[:3])}{', ...' if len(new) > 3 else ''}): "
                f"the cap per source is {cap} (max_source_signals)"
            )
            rejected.append((i, Invalid("too_many_signals", detail)))
            continue
        fresh.update(dict.fromkeys(new))
        kept.append(i)
    group.rows = kept
    return fresh


def parts(
    groups: Sequence[SourceBatch], max_cells: int = MAX_CELLS, slack: float = CELL_SLACK
) -> list[Sequence[SourceBatch]]:
    """The groups in parts scored one after another, each laying out at most
    max(`max_cells`, `slack` x the cells its records fill) (or one source alone, if that alone
    is more): a batch's memory is O(records), never O(busiest source x every series). A batch
    that fits is one part, as it is. Each source is wholly in one part and sources never
    share a series, so the scores are those of the whole batch at once.
    """
    steps = width = filled = 0
    for g in groups:
        rows, n = len(g.rows), len(g.state.signals)
        steps = max(steps, rows)
        width += n
        filled += rows * n
    budget = max(max_cells, int(slack * filled))
    if steps * width <= budget:
        return [groups]
    by_steps = sorted(range(len(groups)), key=lambda j: -len(groups[j].rows))
    out: list[list[int]] = []
    part: list[int] = []
    height = width = 0
    for j in by_steps:  # busiest first: a part's steps are its first source's records
        n = len(groups[j].state.signals)
        if part and height * (width + n) > budget:
            out.append(part)
            part, width = [], 0
        if not part:
            height = len(groups[j].rows)
        part.append(j)
        width += n
    out.append(part)
    return [[groups[j] for j in sorted(p)] for p in out]  # batch order within a part


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
