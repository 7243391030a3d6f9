"""Detector state snapshots: exact through JSON, compact for rows of numbers."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from detectors.state import Init, from_snapshot, new_state, to_snapshot

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
