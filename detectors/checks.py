"""Conformance checks every detector must pass (river's `utils.estimator_checks` idea).

`check_detector(Spike)` (a class is built with its defaults) or `check_detector(Spike(span=50))`
runs each check in `CHECKS` and raises `CheckFailed`, naming the detector and the check, at the
first that fails. The tests run it over every registered detector, so a detector is held to all
of this the moment it is listed in `detectors.registry`; a detector written elsewhere can run it
in its own tests.

>>> from detectors.spike import Spike
>>> check_detector(Spike, checks=[check_capabilities, check_state_layout])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import numpy as np
import orjson

from detectors.protocol import CAPABILITIES, Detector, Period
from detectors.state import State, from_snapshot, to_snapshot

Check = Callable[[Detector], None]
TARGET_FAP = 1e-3
"""The false-alarm probability `check_false_alarms_within_budget` calibrates to."""


class CheckFailed(AssertionError):
    """A detector broke one of the checks: the message names both."""


def replay(
    det: Detector,
    xs: np.ndarray,
    ts: np.ndarray,
    st: State | None = None,
    cal: State | None = None,
) -> tuple[np.ndarray, State, State]:
    """Score then learn each row (steps x series), as the step loop does; return the calibrated
    scores and the detector's and calibration's states."""
    n = xs.shape[1]
    st = det.new_state(n) if st is None else st
    cal = det.calibration.new_state(n) if cal is None else cal
    scores = []
    mask = np.ones(n, dtype=bool)
    for x, t in zip(xs, ts, strict=True):
        raw = det.raw(st, x, t)
        scores.append(1.0 - det.calibration.tail_probability(cal, raw.stat))
        det.learn(st, x, t, mask)
        det.calibration.learn(cal, raw.calibration_input, mask)
    return np.array(scores), st, cal


def streams(rng: np.random.Generator, steps: int = 400) -> dict[str, np.ndarray]:
    """Awkward inputs every detector must survive: missing values, constants, extreme scales."""
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


def check_capabilities(det: Detector) -> None:
    """Every capability the `Scorer` reads is declared, with its type; a role it claims is
    there (the engine reads capabilities, never kinds or classes)."""
    kind = getattr(det, "kind", None)
    _require(isinstance(kind, str) and kind != "", "kind must be a non-empty str")
    version = getattr(det, "state_version", None)
    _require(
        isinstance(version, int) and not isinstance(version, bool) and version >= 1,
        "state_version must be an int >= 1",
    )
    for name, typ in CAPABILITIES.items():
        _require(hasattr(det, name), f"capability {name!r} is not declared")
        value = getattr(det, name)
        _require(isinstance(value, typ), f"capability {name!r} must be a {typ.__name__}")
        if typ is tuple:
            _require(all(isinstance(v, str) for v in value), f"{name!r} must hold str")
    _require(kind not in det.explains, "a detector cannot explain its own verdicts")
    if det.rarity:
        for method in ("weights", "observe"):
            _require(callable(getattr(det, method, None)), f"rarity needs `{method}`")
    if det.describes_rhythm:
        rhythm = getattr(det, "rhythm", None)
        _require(callable(rhythm), "describes_rhythm needs `rhythm(state)`")
        found = rhythm(det.new_state(3))  # type: ignore[misc]
        _require(
            isinstance(found, list)
            and len(found) == 3
            and all(f is None or isinstance(f, Period) for f in found),
            "rhythm(state) must give a Period or None per series",
        )
        fields = getattr(det, "rhythm_fields", None)
        _require(
            isinstance(fields, tuple) and len(fields) > 0 and set(fields) <= set(det.fields),
            "describes_rhythm needs `rhythm_fields`, a tuple of its state fields",
        )
        st = det.new_state(3)
        only = {f: st[f] for f in cast(tuple[str, ...], fields)}
        alone = rhythm(only)  # type: ignore[misc]
        _require(alone == found, "rhythm(state) must read its `rhythm_fields` alone")


def check_state_layout(det: Detector) -> None:
    """`new_state(n)` holds exactly the declared fields: float64, one row per series."""
    st = det.new_state(4)
    _require(set(st) == set(det.fields), "new_state's fields differ from `fields`")
    for name, init in det.fields.items():
        shape = (4, init[1]) if isinstance(init, tuple) else (4,)
        value = st[name]
        _require(value.dtype == np.float64 and value.shape == shape, f"field {name!r}: {shape}")


def check_scores_in_unit_interval(det: Detector) -> None:
    """Calibrated scores stay in [0, 1], never NaN, with no hidden overflow, and the state stays
    finite (JSON has no Infinity), whatever the input."""
    rng = np.random.default_rng(1)
    for case, xs in streams(rng).items():
        ts = np.cumsum(rng.exponential(1.0, xs.shape), axis=0)  # irregular timestamps
        try:
            with np.errstate(over="raise", invalid="raise"):
                scores, st, _ = replay(det, xs, ts)
        except FloatingPointError as exc:
            raise CheckFailed(f"{case}: {exc}") from exc
        _require(not np.isnan(scores).any(), f"{case}: a score is NaN")
        _require(
            bool(((scores >= 0.0) & (scores <= 1.0)).all()), f"{case}: a score is outside [0, 1]"
        )
        for name, values in st.items():
            _require(not np.isinf(values).any(), f"{case}: state field {name!r} is infinite")


def check_state_round_trip(det: Detector) -> None:
    """A state saved as JSON and restored gives bit-identical later scores (the snapshot is the
    contract: a restarted worker resumes from it)."""
    rng = np.random.default_rng(2)
    xs = rng.normal(0.0, 1.0, (600, 4))
    xs[rng.random(xs.shape) < 0.1] = np.nan
    ts = np.arange(600.0)[:, None] * np.ones((1, 4))
    whole, _, _ = replay(det, xs, ts)
    _, st, cal = replay(det, xs[:300], ts[:300])
    for name, values in st.items():
        _require(not np.isinf(values).any(), f"state field {name!r} is infinite")
    try:
        st_json = orjson.loads(orjson.dumps(to_snapshot(st)))
        cal_json = orjson.loads(orjson.dumps(to_snapshot(cal)))
        st2 = from_snapshot(st_json, det.fields, 4)
        cal2 = from_snapshot(cal_json, det.calibration.fields, 4)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckFailed(f"state does not survive JSON: {exc}") from exc
    resumed, _, _ = replay(det, xs[300:], ts[300:], st2, cal2)
    _require(np.array_equal(resumed, whole[300:]), "scores after a JSON round trip differ")


def check_batch_equals_single(det: Detector) -> None:
    """Deterministic, and a series scores the same alone as in a batch of others."""
    rng = np.random.default_rng(3)
    xs = rng.normal(0.0, 1.0, (300, 5))
    ts = np.arange(300.0)[:, None] * np.ones((1, 5))
    a, _, _ = replay(det, xs, ts)
    b, _, _ = replay(det, xs, ts)
    _require(np.array_equal(a, b), "two runs over the same input differ")
    alone, _, _ = replay(det, xs[:, 2:3], ts[:, 2:3])  # the same series scored in a batch of one
    _require(
        np.allclose(alone[:, 0], a[:, 2], rtol=0, atol=1e-12),
        "a series scores differently alone than in a batch",
    )


def check_masked_rows_do_not_learn(det: Detector) -> None:
    """The learning gate: a row whose mask is off keeps its fresh state."""
    rng = np.random.default_rng(4)
    st = det.new_state(2)
    for x in rng.normal(0.0, 1.0, (50, 2)):
        det.learn(st, x, np.zeros(2), np.array([True, False]))
    fresh = det.new_state(1)
    for name, values in st.items():
        _require(np.array_equal(values[1:], fresh[name], equal_nan=True), f"{name!r} learnt")


def false_alarm_rate(det: Detector) -> float:
    """Share of scores >= 1 - `TARGET_FAP` on Gaussian noise (5-minute samples, 41 days, 50
    series), after a warm-up of 4000 samples."""
    rng = np.random.default_rng(5)
    xs = rng.normal(10.0, 1.0, (12000, 50))
    ts = np.arange(12000.0)[:, None] * 300.0 * np.ones((1, 50))
    scores, _, _ = replay(det, xs, ts)
    return float((scores[4000:] >= 1 - TARGET_FAP).mean())


def check_false_alarms_within_budget(det: Detector) -> None:
    """On noise, at most twice the target's false alarms (a detector may give fewer: no verdict
    without a rhythm, few distinct values of its statistic)."""
    rate = false_alarm_rate(det)
    _require(rate <= 2 * TARGET_FAP, f"false-alarm rate {rate:.2e} on noise, target {TARGET_FAP}")


CHECKS: tuple[Check, ...] = (
    check_capabilities,
    check_state_layout,
    check_scores_in_unit_interval,
    check_state_round_trip,
    check_batch_equals_single,
    check_masked_rows_do_not_learn,
    check_false_alarms_within_budget,
)


def check_detector(
    detector: Detector | type[Detector] | Callable[[], Detector], checks: Sequence[Check] = CHECKS
) -> None:
    """Run `checks` on `detector` (a class or factory is called with no arguments first)."""
    made = isinstance(detector, type) or not hasattr(detector, "raw")  # a class, or a factory
    det = cast(Detector, detector() if made else detector)  # type: ignore[operator]
    name = getattr(det, "kind", type(det).__name__)
    for check in checks:
        try:
            check(det)
        except CheckFailed as exc:
            raise CheckFailed(f"{name}: {check.__name__}: {exc}") from exc
        except Exception as exc:  # a crash fails the check too, with its traceback
            raise CheckFailed(f"{name}: {check.__name__}: {type(exc).__name__}: {exc}") from exc


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise CheckFailed(message)
