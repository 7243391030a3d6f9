"""Detector state as arrays: one row per series, so a time step updates many series at once.

A `State` maps field names to float64 arrays whose first axis is the series (a source's signal).
A source keeps its numbers in two blocks (`Packing`); a micro-batch concatenates the blocks of
its sources and hands each detector views into them, then cuts them back per source. The
snapshot of one source is plain JSON, never pickle: a field of one number per series is a list of
floats (exact through orjson's shortest repr); a field of rows of numbers (a seasonal profile, a
history) is the base64 of its little-endian float64 bytes, exact as well, and smaller and much
faster to encode than the same numbers as text (docs/benchmarks.md).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence

import numpy as np

State = dict[str, np.ndarray]
"""Field name -> float64 array of shape (n_series,) or (n_series, k)."""

Snapshot = dict[str, list[float] | str]
"""One source's rows of a `State`, JSON-safe (see the module docstring)."""


Init = float | tuple[float, int]
"""A field's initial value; `(value, width)` for a field of `width` numbers per series."""


def new_state(fields: Mapping[str, Init], n: int) -> State:
    """A state of `n` series with every field set to its initial value."""
    out: State = {}
    for name, init in fields.items():
        if isinstance(init, tuple):
            out[name] = np.full((n, init[1]), init[0], dtype=np.float64)
        else:
            out[name] = np.full(n, init, dtype=np.float64)
    return out


class Packing:
    """Where every field of a suite's states lives in a source's two blocks of numbers.

    Fields of one number per series are the rows of a (fields, series) block; fields of rows
    of numbers are column ranges of a (series, numbers) block. A batch of sources is then two
    concatenations and each source's part two slices, whatever the number of fields (per field
    and per source, gathering and cutting states was half the cost of a batch of one record
    per source). The detectors see `State` dicts of views into the batch's blocks.

    A suite's states come in `slots` (each detector's state, then each calibration's).
    """

    def __init__(self, slots: Sequence[Mapping[str, Init]]) -> None:
        self.slots = [dict(fields) for fields in slots]
        self.scalar: list[dict[str, int]] = []
        self.wide: list[dict[str, tuple[int, int]]] = []
        scalar_init: list[float] = []
        wide_init: list[float] = []
        for fields in self.slots:
            rows: dict[str, int] = {}
            spans: dict[str, tuple[int, int]] = {}
            for name, init in fields.items():
                if isinstance(init, tuple):
                    spans[name] = (len(wide_init), len(wide_init) + init[1])
                    wide_init.extend([init[0]] * init[1])
                else:
                    rows[name] = len(scalar_init)
                    scalar_init.append(init)
            self.scalar.append(rows)
            self.wide.append(spans)
        self.scalar_init = np.asarray(scalar_init, dtype=np.float64)
        self.wide_init = np.asarray(wide_init, dtype=np.float64)

    def new(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Blocks of `n` fresh series: (fields, n) and (n, numbers)."""
        scalars = np.repeat(self.scalar_init[:, None], n, axis=1)
        wide = np.repeat(self.wide_init[None, :], n, axis=0)
        return scalars, wide

    def views(self, scalars: np.ndarray, wide: np.ndarray) -> list[State]:
        """Each slot's `State` as views into the blocks (writes go to the blocks)."""
        out: list[State] = []
        for rows, spans in zip(self.scalar, self.wide, strict=True):
            state: State = {name: scalars[i] for name, i in rows.items()}
            state.update({name: wide[:, a:b] for name, (a, b) in spans.items()})
            out.append(state)
        return out

    @staticmethod
    def write_back(states: Sequence[State], views: Sequence[State]) -> None:
        """Copy fields a detector replaced by new arrays (`st[k] = ...`) into their views."""
        for state, original in zip(states, views, strict=True):
            for name, view in original.items():
                value = state[name]
                if value is not view:
                    view[...] = value

    def snapshots(self, scalars: np.ndarray, wide: np.ndarray) -> list[Snapshot]:
        """`to_snapshot` of each slot's state, with one list conversion for all the fields of
        one number per series (a source's state is saved once a second)."""
        rows = scalars.tolist()
        out: list[Snapshot] = []
        for fields, at, spans in zip(self.slots, self.scalar, self.wide, strict=True):
            snap: Snapshot = {}
            for name in fields:
                if name in at:
                    snap[name] = rows[at[name]]
                else:
                    a, b = spans[name]
                    snap[name] = _rows_text(wide[:, a:b])
            out.append(snap)
        return out

    def pack(self, states: Sequence[State], n: int) -> tuple[np.ndarray, np.ndarray]:
        """Blocks holding `states` (one per slot, `n` series each)."""
        scalars, wide = self.new(n)
        self.write_back(states, self.views(scalars, wide))
        return scalars, wide


def to_snapshot(state: State) -> Snapshot:
    """JSON-safe: lists of floats, or base64 float64 bytes for fields of rows (see above)."""
    out: Snapshot = {}
    for k, v in state.items():
        if v.ndim == 2:
            out[k] = _rows_text(v)
        else:
            out[k] = v.tolist()
    return out


def _rows_text(rows: np.ndarray) -> str:
    """A field of rows of numbers as the base64 of its little-endian float64 bytes (row-major)."""
    return base64.b64encode(np.ascontiguousarray(rows, dtype="<f8").tobytes()).decode("ascii")


def from_snapshot(snapshot: Mapping[str, object], fields: Mapping[str, Init], n: int) -> State:
    """Rebuild arrays from a snapshot, checking every field and its shape."""
    state: State = {}
    for name, init in fields.items():
        raw = snapshot[name]
        if isinstance(raw, str):
            values = np.frombuffer(base64.b64decode(raw, validate=True), dtype="<f8").copy()
        else:
            values = np.asarray(raw, dtype=np.float64)
        shape = (n, init[1]) if isinstance(init, tuple) else (n,)
        if values.size != n * (shape[1] if len(shape) == 2 else 1):
            raise ValueError(f"state field {name!r} has {values.size} numbers, expected {shape}")
        state[name] = values.reshape(shape).astype(np.float64, copy=False)
    return state
