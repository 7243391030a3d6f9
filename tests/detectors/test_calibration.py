"""The calibration stack calibrates a whole suite at once and must equal each detector's own."""

from __future__ import annotations

import numpy as np

from detectors.calibration import TAIL, Calibration, CalibrationStack
from detectors.registry import default_suite


def test_stack_equals_each_calibration_exactly() -> None:
    cals = (
        Calibration(min_scale=0.05),
        Calibration(window=300, tail_window=50, min_scale=2.0),
        Calibration(adaptive_tail=True, min_scale=0.01),
    )
    stack = CalibrationStack(cals)
    n = 6
    own = [c.new_state(n) for c in cals]
    stacked = stack.stack([c.new_state(n) for c in cals])
    rng = np.random.default_rng(3)
    for step in range(2000):
        r = rng.exponential(1.0, (len(cals), n)) * rng.choice([0.0, 1.0, 50.0], (len(cals), n))
        r[:, 0] = np.nan  # never a statistic
        mask = rng.random((len(cals), n)) < 0.9
        p_stack = stack.tail_probability(stacked, r)
        for d, cal in enumerate(cals):
            np.testing.assert_array_equal(p_stack[d], cal.tail_probability(own[d], r[d]))
            cal.learn(own[d], r[d], mask[d])
        stack.learn(stacked, r, mask)
        if step % 500 == 0:
            for d, cal in enumerate(cals):
                row = {name: stacked[name][d] for name in cal.fields}  # views of the stack
                np.testing.assert_array_equal(cal.quantile(row, 1e-4), cal.quantile(own[d], 1e-4))
                levels = np.full(n, 1e-4)
                np.testing.assert_array_equal(
                    stack.quantile(stacked, d, levels), cal.quantile(row, levels)
                )
    back = [c.new_state(n) for c in cals]
    stack.unstack(stacked, back)
    for d in range(len(cals)):
        assert back[d].keys() == own[d].keys()
        for name in own[d]:
            np.testing.assert_array_equal(back[d][name], own[d][name])
    # rows without an adaptive tail anchor at TAIL throughout
    np.testing.assert_array_equal(stacked["pe"][:2], TAIL)
    assert not np.all(stacked["pe"][2] == TAIL)


def test_stack_of_the_default_suite_builds() -> None:
    suite = default_suite()
    stack = CalibrationStack(tuple(d.calibration for d in suite))
    st = stack.stack([d.calibration.new_state(4) for d in suite])
    assert st["n"].shape == (len(suite), 4)
