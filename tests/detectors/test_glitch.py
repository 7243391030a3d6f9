"""One wild value (a glitch: 1e15, or a million times the signal's scale) must not blind a
signal: a 20-sigma value later is still anomalous, each detector's statistic for it stays
about what it would have been, the calibration still calls it rare, and novelty's map of the
signal's range keeps its resolution (issue 30, item 10)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.calibration import Calibration
from detectors.engine import Scorer, ScoringConfig
from detectors.novelty import Novelty
from detectors.offline import score_records
from detectors.protocol import Detector
from detectors.records import Record
from detectors.registry import REGISTRY

LEVEL, SCALE = 10.0, 1.0
GLITCHES = {"1e15": 1e15, "1e6 scales": LEVEL + 1e6 * SCALE, "-1e15": -1e15}
SPIKE = LEVEL + 20.0 * SCALE
"""A 20-sigma value: what a signal must still be able to show after a glitch."""


def normal_series(n: int, glitch: float | None, at: int, seed: int = 1) -> np.ndarray:
    x = LEVEL + np.random.default_rng(seed).normal(0.0, SCALE, n)
    if glitch is not None:
        x[at] = glitch
    return x


@pytest.mark.parametrize("glitch", GLITCHES.values(), ids=GLITCHES.keys())
@pytest.mark.parametrize("suite", ["stream", "every detector"])
def test_a_glitch_does_not_hide_a_later_20_sigma_value(glitch: float, suite: str) -> None:
    """Through the stream's scorer: the spikes after the glitch are anomalies worth an alert,
    just as they are without it, and they stay as extreme."""
    dets = None if suite == "stream" else [make() for make in REGISTRY.values()]
    config = ScoringConfig()
    spikes = (3300, 4000, 5900)
    p = {}
    for label, g in (("clean", None), ("glitch", glitch)):
        x = normal_series(6000, g, at=3000)
        x[list(spikes)] = SPIKE
        records = [Record("s", 1e9 + 60.0 * i, "", {"v": float(v)}) for i, v in enumerate(x)]
        out = score_records(Scorer(config, dets), records)
        assert out[3000].is_anomaly or g is None  # the glitch itself is one
        p[label] = [out[s].p for s in spikes]
        for s in spikes:
            assert out[s].is_anomaly and out[s].alertable, (label, s, out[s].p)
        assert max(p[label]) < config.target_fap / config.known_factor, (label, p[label])
        # the normal values around it are not all flagged instead
        flagged = sum(r.is_anomaly for i, r in enumerate(out[3001:]) if i + 3001 not in spikes)
        assert flagged < 30, (label, flagged)


@pytest.mark.parametrize("glitch", GLITCHES.values(), ids=GLITCHES.keys())
@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_each_detector_still_sees_a_20_sigma_value_after_a_glitch(kind: str, glitch: float) -> None:
    """Each detector's raw statistic for a 20-sigma value, 500 values after a glitch, is at
    least half of what it is without the glitch (sequence: its range forgets the winsorised
    glitch, 101 ranges wide, within 5,000 values)."""
    det: Detector = REGISTRY[kind]()
    after = 8000 if kind == "sequence" else 500
    stats = {}
    for label, g in (("clean", None), ("glitch", glitch)):
        x = normal_series(3000 + after, g, at=3000)
        st = det.new_state(1)
        one = np.ones(1, bool)
        for i, v in enumerate(x):
            det.learn(st, np.array([v]), np.array([1e9 + 60.0 * i]), one)
        t = np.array([1e9 + 60.0 * len(x)])
        stats[label] = float(det.raw(st, np.array([SPIKE]), t).stat[0])
    clean, hit = stats["clean"], stats["glitch"]
    if np.isnan(clean):  # no verdict without a glitch either (stuck, seasonal on noise)
        assert np.isnan(hit) or hit >= 0
        return
    assert hit >= 0.5 * clean, stats


@pytest.mark.parametrize("glitch", [1e15, 1e6, np.inf], ids=str)
def test_the_calibration_still_calls_a_large_statistic_rare_after_a_glitch(glitch: float) -> None:
    """A calibration learns an exponential statistic, then one glitch: a statistic of 20
    (P = e^-20 under what it learnt, about 1e-11 as fitted) keeps a tail probability below
    1e-4, the alert threshold at the default target (without winsorising: 0.05, the anchor's)."""
    cal = Calibration(min_scale=0.05)
    rng = np.random.default_rng(2)
    clean, hit = cal.new_state(1), cal.new_state(1)
    one = np.ones(1, bool)
    for i, r in enumerate(rng.exponential(1.0, 5000)):
        cal.learn(clean, np.array([r]), one)
        cal.learn(hit, np.array([glitch if i == 2500 else r]), one)
    p_clean = float(cal.tail_probability(clean, np.array([20.0]))[0])
    p_hit = float(cal.tail_probability(hit, np.array([20.0]))[0])
    assert p_clean < 1e-7
    assert p_hit < 1e-4, (p_clean, p_hit)
    assert np.all([np.isfinite(v).all() for v in hit.values()])


@pytest.mark.parametrize("glitch", GLITCHES.values(), ids=GLITCHES.keys())
def test_a_glitch_does_not_coarsen_the_novelty_map(glitch: float) -> None:
    """The grid's cell width is what it would have been without the glitch, so a value just
    beyond the usual range is still new; the glitch itself was new."""
    det = Novelty()
    one = np.ones(1, bool)
    widths = {}
    for label, g in (("clean", None), ("glitch", glitch)):
        st = det.new_state(1)
        for v in normal_series(3000, g, at=2000):
            if v == g:
                assert det.raw(st, np.array([v]), np.zeros(1)).stat[0] == 1.0
            det.learn(st, np.array([v]), np.zeros(1), one)
        widths[label] = float(st["width"][0])
        beyond = float(st["hi"][0]) + 3 * widths[label] if g is None else LEVEL + 8 * SCALE
        assert det.raw(st, np.array([beyond]), np.zeros(1)).stat[0] == 1.0, label
        assert det.raw(st, np.array([LEVEL]), np.zeros(1)).stat[0] == 0.0, label
    assert widths["glitch"] == widths["clean"]


def test_novelty_still_follows_a_signal_that_moves_far_for_good() -> None:
    """A far value that is not alone (the signal moved) is learnt once it repeats: the new
    level stops being new."""
    det = Novelty()
    one = np.ones(1, bool)
    st = det.new_state(1)
    for v in normal_series(2000, None, at=0):
        det.learn(st, np.array([v]), np.zeros(1), one)
    for v in normal_series(200, None, at=0, seed=4) + 1e6:
        det.learn(st, np.array([v]), np.zeros(1), one)
    assert det.raw(st, np.array([LEVEL + 1e6]), np.zeros(1)).stat[0] == 0.0
