"""The compiled loops: numpy's summation order, and scoring from numba's on-disk cache."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detectors.engine import Scorer, ScoringConfig
from detectors.jit import pairwise_sum
from detectors.records import Record

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("width", [1, 7, 8, 9, 48, 128, 129, 300, 512, 1000])
def test_pairwise_sum_equals_numpy_to_the_last_bit(width: int) -> None:
    rng = np.random.default_rng(width)
    block = rng.exponential(1.0, (200, width + 40)) * rng.choice(
        [1e-6, 1.0, 1e6], (200, width + 40)
    )
    rows = block[:, 20 : 20 + width]  # rows of a wider array, as a state's profile is
    ours = np.array([pairwise_sum(row, 0, width) for row in rows])
    np.testing.assert_array_equal(ours, rows.sum(axis=1))
    # a plain running sum differs somewhere: the test would notice a change of order
    if width >= 48:
        assert not np.array_equal(np.cumsum(rows, axis=1)[:, -1], rows.sum(axis=1))


SCRIPT = """
import math
from detectors.engine import Scorer, ScoringConfig
from detectors.records import Record
def value(i):
    return 10 * math.sin(2 * math.pi * i / 144) + (i * 7919 % 13) / 13
rows = [Record("s", 1.7e9 + 600 * i, "", {"a": value(i), "b": i % 5}) for i in range(1000)]
scored = Scorer(ScoringConfig()).score_batch(rows, {})
assert scored[-1].rows.results()[0].period is not None  # the seasonal detector judges
print(repr([(r.p, r.rows.results()[0].lower) for r in scored[-200:]]))
"""


def test_scores_are_the_same_compiled_and_loaded_from_the_cache(tmp_path: Path) -> None:
    """numba's cache has crashed on loading some functions (recursive ones, numba#6061): run
    scoring twice in fresh processes, the second from the cache the first wrote."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    assert any(tmp_path.rglob("*.nbc")), "nothing was cached"
    assert runs[0].stdout == runs[1].stdout


def _compiled() -> dict[str, int]:
    """Every kernel of the scoring path -> how many signatures numba has compiled for it."""
    out = {}
    kernels = ("persist", "spike", "stuck", "level_shift", "sequence", "seasonal", "novelty")
    for module in (*kernels, "calibration", "fusion"):
        mod = importlib.import_module(f"detectors.{module}")
        for name, obj in vars(mod).items():
            if hasattr(obj, "signatures") and hasattr(obj, "py_func"):
                out[f"{module}.{name}"] = len(obj.signatures)
    return out


def test_after_prepare_no_batch_waits_for_a_compilation() -> None:
    """numba compiles per array layout: `prepare` must cover what real batches hand the loops
    (one series: contiguous rows; more: strided views), or a batch mid-stream stalls."""
    scorer = Scorer(ScoringConfig())
    scorer.prepare()
    before = _compiled()
    assert sum(before.values()) >= 15  # the loops the engine calls are compiled
    rng = np.random.default_rng(5)
    records = [
        Record(
            f"s{s}",
            1.7e9 + 300.0 * i,
            "",
            {
                "a": float(10 * np.sin(i / 288 * 2 * np.pi) + rng.normal()),
                "b": None if i % 50 == 0 else float(rng.normal()),
            },
        )
        for i in range(4 * 288)
        for s in range(3)
    ]
    states: dict[str, Any] = {}
    for k in range(0, len(records), 250):
        scorer.score_batch(records[k : k + 250], states)
    scorer.score_batch([Record("alone", 1.7e9, "", {"x": 1.0})], states)  # one series
    late = [Record("s0", 1.7e9, "", {"a": 1.0, "b": 2.0})]  # late: scored, not learnt
    scored = scorer.score_batch(late, states)
    assert scored[0] is not None and scored[0].late
    assert _compiled() == before
