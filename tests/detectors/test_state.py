"""Detector state snapshots: exact through JSON, compact for rows of numbers."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from detectors.state import Init, Packing, from_snapshot, new_state, to_snapshot

FIELDS: dict[str, Init] = {"level": 0.0, "profile": (0.0, 5)}


def test_rows_of_numbers_travel_as_base64_and_come_back_bit_exact() -> None:
    rng = np.random.default_rng(0)
    state = new_state(FIELDS, 3)
    state["level"][:] = rng.normal(size=3)
    state["profile"][:] = rng.normal(size=(3, 5)) * 1e-300
    state["profile"][1, 2] = np.inf
    snap = orjson.loads(orjson.dumps(to_snapshot(state)))
    assert isinstance(snap["profile"], str) and isinstance(snap["level"], list)
    back = from_snapshot(snap, FIELDS, 3)
    for name in FIELDS:
        assert back[name].tobytes() == state[name].tobytes()


def test_lists_saved_before_base64_still_load_and_wrong_shapes_are_refused() -> None:
    legacy = {"level": [1.0, 2.0], "profile": [[0.0] * 5, [1.0] * 5]}
    assert from_snapshot(legacy, FIELDS, 2)["profile"][1].tolist() == [1.0] * 5
    with pytest.raises(ValueError, match="profile"):
        from_snapshot({"level": [1.0, 2.0], "profile": [[0.0] * 4] * 2}, FIELDS, 2)
    with pytest.raises(ValueError):
        from_snapshot({"level": [1.0, 2.0], "profile": "not base64!"}, FIELDS, 2)


def test_packing_lays_out_every_slot_and_writes_back_replaced_fields() -> None:
    other: dict[str, Init] = {"n": 1.0, "ring": (2.0, 3), "m": 0.0}
    packing = Packing([FIELDS, other])
    rng = np.random.default_rng(1)
    states = [new_state(FIELDS, 4), new_state(other, 4)]
    for state in states:
        for value in state.values():
            value[...] = rng.normal(size=value.shape)
    scalars, wide = packing.pack(states, 4)
    assert scalars.shape == (3, 4) and wide.shape == (4, 8)
    views = packing.views(scalars, wide)
    for state, view in zip(states, views, strict=True):
        for name in state:
            np.testing.assert_array_equal(view[name], state[name])
    # in-place writes land in the blocks; a replaced array is copied back by write_back
    working = [dict(view) for view in views]
    working[0]["level"] += 1.0
    working[1]["n"] = np.full(4, 7.0)
    working[1]["ring"] = np.zeros((4, 3))
    packing.write_back(working, views)
    again = packing.views(scalars, wide)
    np.testing.assert_array_equal(again[0]["level"], states[0]["level"] + 1.0)
    assert again[1]["n"].tolist() == [7.0] * 4
    assert not again[1]["ring"].any()
    fresh_scalars, fresh_wide = packing.new(2)
    assert fresh_scalars[:, 0].tolist() == [0.0, 1.0, 0.0]
    assert fresh_wide[1].tolist() == [0.0] * 5 + [2.0] * 3


def test_packing_snapshots_equal_each_views_snapshot() -> None:
    other: dict[str, Init] = {"n": 1.0, "ring": (2.0, 3), "m": 0.0}
    packing = Packing([FIELDS, other])
    scalars, wide = packing.new(3)
    rng = np.random.default_rng(2)
    scalars[...] = rng.normal(size=scalars.shape)
    wide[...] = rng.normal(size=wide.shape)
    snaps = packing.snapshots(scalars, wide)
    views = packing.views(scalars, wide)
    for snap, view, fields in zip(snaps, views, [FIELDS, other], strict=True):
        assert snap == to_snapshot(view)
        assert list(snap) == list(fields)  # the fields' own order, as before the packing
