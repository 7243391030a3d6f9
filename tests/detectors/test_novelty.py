"""The novelty detector: its map of where a signal has been, and how it weighs the others."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.fusion import DECADES, decade, fuse_step, sidak
from detectors.novelty import Novelty


def visited(det: Novelty, st: dict[str, np.ndarray], history: np.ndarray) -> set[int]:
    """The cells the map should hold, from every value learnt: the first values' range as
    the first grid cut it (cells 0..split), and each later value's cell, at today's width."""
    origin, width = float(st["origin"][0]), float(st["width"][0])
    width0 = (history[: det.warm].max() - history[: det.warm].min()) / det.split
    doublings = round(math.log2(width / width0))
    first = {c >> doublings for c in range(int(det.split) + 1)}
    later = {math.floor((v - origin) / width) for v in history[det.warm :]}
    return first | later


def test_the_map_is_every_cell_visited_through_doublings_and_new_lows() -> None:
    """A random walk that keeps breaking its range, up and down: the grid doubles many times
    and bit 0 moves down; at every step the map must say 'new' exactly for the cells no value
    has visited (merging two cells into one is exact, so nothing is forgotten or invented)."""
    det = Novelty(levels=12)
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.standard_t(2, 3000))
    st = det.new_state(1)
    checked = 0
    for k, v in enumerate(values):
        det.learn(st, np.array([v]), np.zeros(1), np.ones(1, bool))
        if k + 1 < det.warm or k % 37:
            continue
        cells = visited(det, st, values[: k + 1])
        origin, width = float(st["origin"][0]), float(st["width"][0])
        lo, hi = values[: k + 1].min(), values[: k + 1].max()
        probes = rng.uniform(lo - (hi - lo) * 0.3, hi + (hi - lo) * 0.3, 50)
        raw = np.array([det.raw(st, np.array([x]), np.zeros(1)).stat[0] for x in probes])
        expected_new = [math.floor((p - origin) / width) not in cells for p in probes]
        assert list(raw > 0) == expected_new, k
        checked += 1
    first_width = (values[:100].max() - values[:100].min()) / det.split
    assert float(st["width"][0]) >= 3.99 * first_width  # it doubled at least twice
    assert float(st["lo"][0]) < float(st["origin"][0])  # the walk went below its first range
    assert checked > 50


def test_q_is_the_share_of_new_values_among_those_with_a_p_of_the_same_decade() -> None:
    """Values observed with p in three decades, new ones only in the deepest: q is counted per
    decade (plus one pseudo-value, new), and decades nobody fell in give no gain."""
    det = Novelty()
    rng = np.random.default_rng(3)
    st = det.new_state(1)
    ps = rng.choice([0.5, 0.05, 0.005], 3000, p=[0.8, 0.15, 0.05])
    values = np.where(ps == 0.005, np.arange(3000.0), rng.uniform(-1.0, 1.0, 3000))
    values[:100] = np.linspace(-1.0, 1.0, 100)
    stats = []
    for v, p in zip(values, ps, strict=True):
        x = np.array([v])
        stat = det.raw(st, x, np.zeros(1)).stat
        stats.append(float(stat[0]))
        det.observe(st, stat, np.array([p]), np.ones(1, bool))
        det.learn(st, x, np.zeros(1), np.ones(1, bool))
    assert all(np.isnan(stats[: det.warm - 1]))  # no grid before the first values
    judged = np.arange(3000) >= det.warm
    counts = [int((judged & (ps == p)).sum()) for p in (0.5, 0.05, 0.005)]
    news = [int((judged & (ps == p) & (np.array(stats) == 1.0)).sum()) for p in (0.5, 0.05, 0.005)]
    assert news[2] >= 20 and news[0] == news[1] == 0  # only the far-off values are new
    q = det.weights(st)[0]
    expected = [(h + 1.0) / (c + 1.0) for h, c in zip(news, counts, strict=True)]
    np.testing.assert_allclose(q[:3], expected, rtol=1e-12)
    assert (q[3:] == 1.0).all()
    assert det.raw(st, np.array([0.3]), np.zeros(1)).stat[0] == 0.0


def test_fusion_multiplies_the_signal_p_by_q_of_its_decade_for_a_new_value() -> None:
    """Two tests and a rarity detector (row 2) on three series (three records of one signal):
    new, known, and no grid yet. The tests are Šidák-corrected over two, not three; a new
    value's p (decade 2, 1e-3 to 1e-2) is multiplied by that decade's q; the rarity row never
    fires; alerts count a known value's p ten times (`known_factor`)."""
    stats = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [1.0, 0.0, np.nan]])
    p_det = np.array([[1e-3, 1e-3, 1e-3], [0.5, 0.5, 0.5], [0.2, 0.2, 0.2]])
    n = 3
    weights = np.ones((n, DECADES))
    weights[:, 2] = 0.01
    verdict = np.empty((3, n), dtype=bool)
    p_pre, p_sig = np.empty(n), np.empty(n)
    p_rec, p_alert, warming = np.empty(3), np.empty(3), np.empty(3, dtype=bool)
    fuse_step(
        stats,
        p_det,
        np.full((3, n), 1000.0),
        200.0,
        np.zeros(3, dtype=bool),
        np.empty((0, 2), dtype=np.intp),
        2,
        weights,
        10.0,
        np.ones(n, dtype=bool),
        np.arange(n, dtype=np.intp),
        verdict,
        p_pre,
        p_sig,
        p_rec,
        p_alert,
        warming,
    )
    two = float(sidak(np.array(1e-3), 2))
    assert decade(two) == 2
    np.testing.assert_allclose(p_pre, [two, two, two], rtol=1e-12)
    np.testing.assert_allclose(p_sig, [two * 0.01, two, two], rtol=1e-12)
    np.testing.assert_allclose(p_rec, p_sig, rtol=1e-12)  # one signal per record here
    # alerts ask ten times the evidence of the known value only
    np.testing.assert_allclose(p_alert, [two * 0.01, two * 10.0, two], rtol=1e-12)
    assert (p_det[2] == 1.0).all() and not verdict[2].any()


@pytest.mark.parametrize(
    ("p", "d"), [(1.0, 0), (0.2, 0), (0.1, 0), (0.05, 1), (0.01, 1), (0.009, 2), (1e-30, 7)]
)
def test_decades_of_p(p: float, d: int) -> None:
    assert decade(p) == d


def weighed_alarms(draw, level: float, n: int = 100, steps: int = 12000) -> float:
    """The share of values after the first 4,000 of `n` series whose p, weighed by q of its
    decade where the value is new, is <= `level`; `draw` gives each step's values and p."""
    det = Novelty()
    rng = np.random.default_rng(5)
    st = det.new_state(n)
    alarms = 0
    for k in range(steps):
        x, p = draw(rng, n)
        stat = det.raw(st, x, np.zeros(n)).stat
        q = det.weights(st)[np.arange(n), [decade(v) for v in p]]
        if k >= 4000:
            alarms += int((np.where(stat == 1.0, p * q, p) <= level).sum())
        det.observe(st, stat, p, np.ones(n, bool))
        det.learn(st, x, np.zeros(n), np.ones(n, bool))
    return alarms / (n * (steps - 4000))


def test_weighing_a_p_independent_of_novelty_keeps_its_calibration() -> None:
    """Gaussian values, a uniform p: at the level 1e-4 the rate stays within [0.5, 2] x."""
    rate = weighed_alarms(lambda rng, n: (rng.normal(0.0, 1.0, n), rng.uniform(0.0, 1.0, n)), 1e-4)
    assert 0.5e-4 <= rate <= 2e-4, rate


def test_weighing_does_not_count_the_same_extremeness_twice() -> None:
    """Laplace values and their exact p, exp(-|x|), at 1e-5 (the per-signal level of a record
    of 100 signals). The new values are record highs: their p is small (about 1e-4) but not
    below the level; weighed by an overall share of new values, each would alarm (11 x the
    level here). q of their decade knows that at those decades new is what extremes are."""

    def laplace(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.laplace(0.0, 1.0, n)
        return x, np.exp(-np.abs(x))

    rate = weighed_alarms(laplace, 1e-5)
    assert 0.5e-5 <= rate <= 2e-5, rate


def test_settings_it_cannot_run_with_fail_at_once() -> None:
    for bad in ({"levels": 1}, {"levels": 53}, {"warm": 0}, {"split": 0.0}):
        with pytest.raises(ValueError, match="novelty needs"):
            Novelty(**bad)  # type: ignore[arg-type]
