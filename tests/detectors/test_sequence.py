"""The sequence detector: what it sees that level detectors do not, and its bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.sequence import RESCALE, Sequence


def feed(det: Sequence, values: np.ndarray) -> tuple[dict[str, np.ndarray], list[float]]:
    """Score then learn each value of one series; the raw statistics."""
    st = det.new_state(1)
    stats = []
    for v in values:
        x = np.array([v])
        stats.append(float(det.raw(st, x, np.zeros(1)).stat[0]))
        det.learn(st, x, np.zeros(1), np.ones(1, bool))
    return st, stats


def test_an_out_of_order_value_inside_the_usual_range_is_surprising() -> None:
    """A noisy sawtooth, then one value from the wrong phase: every value is in range and the
    level is unchanged; only the path is new."""
    rng = np.random.default_rng(0)
    cycle = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    values = np.tile(cycle, 500) + rng.normal(0.0, 0.05, 3000)
    assert list(np.round(values[2993:2996])) == [5.0, 0.0, 1.0]
    values[2995] = 4.0  # after 5, 0 comes 1, never 4
    _, stats = feed(Sequence(), values)
    usual = np.array(stats[2000:2995])
    assert stats[2995] > usual.max() + 2.0  # at least e^2 times less likely than any usual step


def test_counts_fade_and_rescale_without_changing_the_statistic() -> None:
    """A memory of 2 values doubles the new counts' weight each step, so the weights pass
    RESCALE (and are rescaled) within the run; the statistic must match plain fading counts."""
    det = Sequence(bins=3, order=1, memory=2, forget=0.0)
    rng = np.random.default_rng(1)
    values = rng.integers(0, 3, 1500).astype(float)
    values[:2] = [0.0, 2.0]  # the range [0, 2] from the start: bins are the values
    st, stats = feed(det, values)
    assert 1 <= float(st["w"][0]) < RESCALE  # 1,489 doublings: w would overflow unrescaled
    pair, ctxn = np.zeros((3, 3)), np.zeros(3)
    expected = []
    for k, v in enumerate(values):
        prev = int(values[k - 1]) if k >= 1 else 0
        if k >= 11:  # MIN_VALUES coded values, then one of context
            expected.append(-np.log((pair[prev, int(v)] + 0.5) / (ctxn[prev] + 1.5)))
        else:
            expected.append(np.nan)
        if k >= 11:
            pair *= 0.5
            ctxn *= 0.5
            pair[prev, int(v)] += 1.0
            ctxn[prev] += 1.0
    np.testing.assert_allclose(stats, expected, rtol=1e-9)


def test_the_range_forgets_an_old_outlier() -> None:
    """One huge value would otherwise squeeze every later value into the lowest bin for good."""
    rng = np.random.default_rng(2)
    values = np.r_[rng.normal(0.0, 1.0, 100), 1000.0, rng.normal(0.0, 1.0, 10_000)]
    st, _ = feed(Sequence(), values)
    assert float(st["hi"][0]) < 10.0
    assert float(st["lo"][0]) < -2.0  # the low side keeps up with the noise it sees


@pytest.mark.parametrize("bad", [{"bins": 1}, {"order": 0}, {"memory": 1}, {"prior": 0.0}])
def test_settings_it_cannot_run_with_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="sequence needs"):
        Sequence(**bad)  # type: ignore[arg-type]
