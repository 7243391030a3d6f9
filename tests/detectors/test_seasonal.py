"""The seasonal profile: a daily peak is normal at its hour, a daytime level at night is not."""

from __future__ import annotations

import numpy as np

from detectors.seasonal import DAY, Seasonal
from tests.detectors.test_conformance import run

STEP = 300.0  # 5-minute samples
PER_DAY = int(DAY / STEP)


def daily(days: int, series: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A quiet night and a daytime peak, with noise; (values, timestamps), steps x series."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * PER_DAY) * STEP
    phase = (t % DAY) / DAY
    base = 10 + 5 * np.exp(-(((phase - 0.55) / 0.08) ** 2))
    xs = base[:, None] + rng.normal(0, 0.3, (len(t), series))
    return xs, t[:, None] * np.ones((1, series))


def test_alarm_rate_on_a_daily_pattern_is_calibrated() -> None:
    xs, ts = daily(14, 20)
    scores, st, _ = run(Seasonal(), xs, ts)
    rate = float((scores[3 * PER_DAY :] >= 1 - 1e-3).mean())
    assert 0.5e-3 <= rate <= 2e-3, rate
    assert Seasonal().active(st, ts[-1]).all()


def test_a_daytime_level_at_night_is_flagged_and_the_daily_peak_is_not() -> None:
    det = Seasonal()
    xs, ts = daily(14, 5)
    _, st, cal = run(det, xs, ts)
    at = lambda frac: np.full(5, 14 * DAY + frac * DAY)  # noqa: E731
    night = det.calibration.tail_probability(cal, det.raw(st, np.full(5, 15.0), at(0.1)).stat)
    peak = det.calibration.tail_probability(cal, det.raw(st, np.full(5, 15.0), at(0.55)).stat)
    assert (night < 1e-4).all(), night
    assert (peak > 0.05).all(), peak
    expected = det.raw(st, np.full(5, 15.0), at(0.55)).expected
    assert np.allclose(expected, 15.0, atol=0.5)


def test_no_verdict_without_a_rhythm_or_before_two_periods() -> None:
    det = Seasonal()
    rng = np.random.default_rng(3)
    noise = rng.normal(10, 1, (14 * PER_DAY, 4))
    ts = np.arange(len(noise))[:, None] * STEP * np.ones((1, 4))
    _, st, _ = run(det, noise, ts)
    assert not det.active(st, ts[-1]).any()
    xs, ts = daily(1, 3)
    _, young, _ = run(det, xs, ts)
    assert np.isnan(det.raw(young, xs[-1], ts[-1] + STEP).stat).all()


def test_a_gap_does_not_shift_the_phase() -> None:
    det = Seasonal()
    xs, ts = daily(10, 2)
    keep = np.ones(len(xs), dtype=bool)
    keep[5 * PER_DAY : 6 * PER_DAY + 37] = False  # a day and three hours without data
    _, st, cal = run(det, xs[keep], ts[keep])
    probe = np.full(2, 10 * DAY + 0.55 * DAY)
    p = det.calibration.tail_probability(cal, det.raw(st, np.full(2, 15.0), probe).stat)
    assert (p > 0.05).all(), p
