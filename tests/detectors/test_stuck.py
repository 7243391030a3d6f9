"""Stuck judges only signals for which a flat stretch is news."""

from __future__ import annotations

import numpy as np

from detectors.stuck import Stuck


def feed(det: Stuck, values: np.ndarray) -> tuple[dict[str, np.ndarray], list[float]]:
    st, cal = det.new_state(1), det.calibration.new_state(1)
    scores = []
    for v in values:
        x, t = np.array([v]), np.zeros(1)
        raw = det.raw(st, x, t)
        scores.append(1.0 - float(det.calibration.tail_probability(cal, raw.stat)[0]))
        mask = np.ones(1, dtype=bool)
        det.learn(st, x, t, mask)
        det.calibration.learn(cal, raw.calibration_input, mask)
    return st, scores


def test_a_noisy_signal_that_freezes_is_flagged() -> None:
    rng = np.random.default_rng(0)
    values = np.r_[rng.normal(0.0, 1.0, 2000), np.full(30, 0.5)]
    st, scores = feed(Stuck(), values)
    assert max(scores[:2000]) < 0.999
    assert scores[-1] > 0.9999
    assert st["rep"][0] < 0.01, "the frozen run must not teach that the signal repeats"


def test_a_quantised_signal_is_not_judged() -> None:
    rng = np.random.default_rng(1)
    values = np.r_[rng.integers(0, 3, 2000).astype(float), np.full(30, 1.0)]
    _, scores = feed(Stuck(), values)
    assert max(scores[1000:]) == 0.0
