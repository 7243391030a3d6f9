"""One suite over every registered detector (river's `checks/` idea): add a detector to the
registry and it is held to all of this."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from detectors.protocol import Detector
from detectors.registry import REGISTRY
from detectors.state import from_snapshot, to_snapshot

KINDS = sorted(REGISTRY)


def run(det: Detector, xs: np.ndarray, ts: np.ndarray, st=None, cal=None):
    """Score then learn each row (steps x series); return calibrated scores and the states."""
    n = xs.shape[1]
    st = det.new_state(n) if st is None else st
    cal = det.calibration.new_state(n) if cal is None else cal
    scores = []
    for x, t in zip(xs, ts, strict=True):
        raw = det.raw(st, x, t)
        scores.append(1.0 - det.calibration.tail_probability(cal, raw.stat))
        mask = np.ones(n, dtype=bool)
        det.learn(st, x, t, mask)
        det.calibration.learn(cal, raw.calibration_input, mask)
    return np.array(scores), st, cal


def streams(rng: np.random.Generator, steps: int = 400) -> dict[str, np.ndarray]:
    normal = rng.normal(5.0, 2.0, (steps, 3))
    missing = normal.copy()
    missing[rng.random(missing.shape) < 0.3] = np.nan
    return {
        "normal": normal,
        "constant": np.full((steps, 3), 7.0),
        "missing": missing,
        "all_missing": np.full((steps, 3), np.nan),
        "huge": rng.normal(0.0, 1.0, (steps, 3)) * 1e14,
        "tiny": rng.normal(0.0, 1.0, (steps, 3)) * 1e-12,
        "integers": rng.integers(0, 3, (steps, 3)).astype(float),
        "steps": np.repeat([[0.0], [1e6]], steps // 2, axis=0) * np.ones((1, 3)),
    }


@pytest.fixture(params=KINDS)
def det(request: pytest.FixtureRequest) -> Detector:
    return REGISTRY[request.param]()


@pytest.mark.parametrize("case", list(streams(np.random.default_rng(0))))
def test_scores_are_in_unit_interval_and_never_nan(det: Detector, case: str) -> None:
    rng = np.random.default_rng(1)
    xs = streams(rng)[case]
    ts = np.cumsum(rng.exponential(1.0, xs.shape), axis=0)  # irregular timestamps
    with np.errstate(over="raise", invalid="raise"):  # no hidden overflow or NaN arithmetic
        scores, st, _ = run(det, xs, ts)
    assert not np.isnan(scores).any()
    assert ((scores >= 0.0) & (scores <= 1.0)).all()
    for values in st.values():
        assert not np.isinf(values).any(), "state must stay finite (JSON has no Infinity)"


def test_state_round_trip_through_json_gives_identical_later_scores(det: Detector) -> None:
    rng = np.random.default_rng(2)
    xs = rng.normal(0.0, 1.0, (600, 4))
    xs[rng.random(xs.shape) < 0.1] = np.nan
    ts = np.arange(600.0)[:, None] * np.ones((1, 4))
    whole, _, _ = run(det, xs, ts)
    _, st, cal = run(det, xs[:300], ts[:300])
    st_json = orjson.loads(orjson.dumps(to_snapshot(st)))
    cal_json = orjson.loads(orjson.dumps(to_snapshot(cal)))
    st2 = from_snapshot(st_json, det.fields, 4)
    cal2 = from_snapshot(cal_json, det.calibration.fields, 4)
    resumed, _, _ = run(det, xs[300:], ts[300:], st2, cal2)
    np.testing.assert_array_equal(resumed, whole[300:])


def test_deterministic_and_independent_of_the_other_series(det: Detector) -> None:
    rng = np.random.default_rng(3)
    xs = rng.normal(0.0, 1.0, (300, 5))
    ts = np.arange(300.0)[:, None] * np.ones((1, 5))
    a, _, _ = run(det, xs, ts)
    b, _, _ = run(det, xs, ts)
    np.testing.assert_array_equal(a, b)
    alone, _, _ = run(det, xs[:, 2:3], ts[:, 2:3])  # the same series scored in a batch of one
    np.testing.assert_allclose(alone[:, 0], a[:, 2], rtol=0, atol=1e-12)


def test_masked_rows_do_not_learn(det: Detector) -> None:
    rng = np.random.default_rng(4)
    st = det.new_state(2)
    for x in rng.normal(0.0, 1.0, (50, 2)):
        det.learn(st, x, np.zeros(2), np.array([True, False]))
    fresh = det.new_state(1)
    for name, values in st.items():
        np.testing.assert_array_equal(values[1:], fresh[name], err_msg=name)


def test_calibrated_false_alarm_rate_on_gaussian_noise(det: Detector) -> None:
    """P(score >= 1 - 1e-3) on normal data stays within a factor 2 of 1e-3 (stuck: no alarms;
    seasonal: noise has no rhythm, so no verdict; novelty never judges alone, it weighs the
    others' p, see test_novelty; sequence: its statistic takes few distinct
    values, the surprisal of one of bins^(order+1) paths, and a tail fitted over such steps
    errs on the safe side: about 0.4x at 1e-3, never more alarms than the budget)."""
    rng = np.random.default_rng(5)
    xs = rng.normal(10.0, 1.0, (12000, 50))
    ts = np.arange(12000.0)[:, None] * 300.0 * np.ones((1, 50))  # 5-minute samples, 41 days
    scores, _, _ = run(det, xs, ts)
    rate = float((scores[4000:] >= 1 - 1e-3).mean())
    if det.kind in {"stuck", "seasonal", "novelty"}:
        assert rate == 0.0
    elif det.kind == "sequence":
        assert 0.2e-3 <= rate <= 2e-3, rate
    else:
        assert 0.5e-3 <= rate <= 2e-3, rate
