"""The seasonal profile: a daily peak is normal at its hour, a daytime level at night is not;
periods are found from the data (a day, a week, a rhythm in samples), in local time."""

from __future__ import annotations

import numpy as np

from detectors.checks import replay as run
from detectors.clock import LocalClock
from detectors.engine import Scorer, ScoringConfig, signal_matches
from detectors.messages import score_message
from detectors.offline import score_records
from detectors.periods import DAY, WEEK
from detectors.records import Record
from detectors.registry import SuiteOptions, default_suite
from detectors.seasonal import Seasonal, describe
from tests.schemas import check

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
    assert describe(st) == [(DAY, "seconds")] * 20


def test_periods_are_found_within_two_percent() -> None:
    rng = np.random.default_rng(7)
    # a week: busy weekdays, quiet weekends, 10-minute samples, five weeks
    t = np.arange(int(35 * DAY / 600)) * 600.0
    weekday = ((t // DAY).astype(int) + 3) % 7 < 5  # 1970-01-01 was a Thursday
    day_part = (t % DAY) / DAY
    busy = weekday & (day_part > 0.35) & (day_part < 0.75)
    week = 10 + 8 * busy + rng.normal(0, 0.5, len(t))
    _, st, _ = run(Seasonal(), week[:, None], t[:, None])
    assert describe(st) == [(WEEK, "seconds")]
    # 600 samples, no calendar: a sine and a square wave, one sample a second
    t = np.arange(6000.0)
    waves = np.column_stack(
        [np.sin(2 * np.pi * t / 600), 3.0 * (np.mod(t, 600) < 200)]
    ) + rng.normal(0, 0.2, (len(t), 2))
    _, st, _ = run(Seasonal(), waves, np.column_stack([t, t]))
    for found in describe(st):
        assert found is not None and found[1] == "samples"
        assert abs(found[0] - 600) <= 0.02 * 600, found


def test_no_period_in_noise_or_a_random_walk() -> None:
    rng = np.random.default_rng(11)
    n = 20 * PER_DAY
    xs = np.column_stack([rng.normal(0, 1, n), np.cumsum(rng.normal(0, 1, n))])
    t = np.arange(n) * STEP
    _, st, _ = run(Seasonal(), xs, np.column_stack([t, t]))
    assert describe(st) == [None, None]


def local_daily(days: int, zone: str, series: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A smooth daily curve in local wall-clock time across the 2026-03-29 DST change."""
    rng = np.random.default_rng(5)
    start = 1_773_792_000.0  # 2026-03-18 00:00 UTC
    t = start + np.arange(days * PER_DAY) * STEP
    local = LocalClock(zone).local(t)
    curve = 10 + 8 * np.sin(2 * np.pi * (local % DAY) / DAY)
    xs = curve[:, None] + rng.normal(0, 0.3, (len(t), series))
    return xs, t[:, None] * np.ones((1, series))


def test_a_dst_change_raises_nothing_in_local_time() -> None:
    xs, ts = local_daily(18, "Europe/Berlin")
    after = slice(11 * PER_DAY + 12, 14 * PER_DAY)  # from 2026-03-29 01:00 UTC, three days
    local, _, _ = run(Seasonal(clock=LocalClock("Europe/Berlin")), xs, ts)
    utc, _, _ = run(Seasonal(), xs, ts)
    alarms = lambda s: int((s[after] >= 1 - 1e-3).sum())  # noqa: E731
    usual = 2 * 1e-3 * xs[after].size  # twice the target rate: no more than any other day
    assert alarms(local) <= usual, (alarms(local), alarms(utc))
    # in UTC the same curve moved by an hour: alarms
    assert alarms(utc) >= 2 * usual, (alarms(local), alarms(utc))


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


def test_through_the_stream_a_night_value_at_daytime_level_is_flagged_at_once() -> None:
    xs, ts = daily(15, 6, seed=4)
    recs = [
        Record(f"s{j}", float(ts[i, j]), f"{i}", {"load": float(xs[i, j])})
        for i in range(len(xs))
        for j in range(xs.shape[1])
    ]
    night = 14 * PER_DAY + int(0.1 * PER_DAY)  # 02:24, where the load is about 10
    for j in range(3):  # three sources get their daytime peak at night
        recs[night * 6 + j] = Record(f"s{j}", float(ts[night, j]), "x", {"load": 15.0})
    out = score_records(Scorer(ScoringConfig()), recs)
    flagged = [r for r in out if r.is_anomaly]
    assert {(r.record.source, r.record.ts) for r in flagged} >= {
        (f"s{j}", float(ts[night, j])) for j in range(3)
    }
    hit = out[night * 6]
    assert "seasonal" in hit.signals[0].fired
    message = score_message(hit, ScoringConfig())
    check("score", message)
    assert message["signals"]["load"]["period"] == {"length": DAY, "unit": "seconds"}
    assert abs(message["signals"]["load"]["expected"] - 10.0) < 0.5  # the night's level
    # the daily peak itself is normal: after a week, alarms elsewhere stay within the target
    later = out[7 * PER_DAY * 6 :]
    peak_hours = [r for r in later if 0.45 <= (r.record.ts % DAY) / DAY <= 0.65]
    others = [r for r in later if r.is_anomaly and abs(r.record.ts - ts[night, 0]) > 2 * STEP]
    assert len(others) <= 2 * 1e-3 * len(later), len(others)
    assert sum(r.is_anomaly for r in peak_hours) <= max(2 * 1e-3 * len(peak_hours), 1)


def test_seasonal_runs_only_on_the_signals_its_patterns_select() -> None:
    assert signal_matches("temp_1", ("temp*", "!temp_raw"))
    assert not signal_matches("temp_raw", ("temp*", "!temp_raw"))
    assert not signal_matches("flow", ("temp*",))
    xs, ts = daily(4, 1)
    recs = [
        Record("s", float(t), f"{i}", {"temp_1": float(x), "temp_raw": float(x)})
        for i, (x, t) in enumerate(zip(xs[:, 0], ts[:, 0], strict=True))
    ]
    suite = default_suite(SuiteOptions(signals=("temp*", "!temp_raw")))
    scorer = Scorer(ScoringConfig(), suite)
    out = score_records(scorer, recs)
    by_name = {s.name: s for s in out[-1].signals}
    assert by_name["temp_1"].period == (DAY, "seconds")
    assert by_name["temp_raw"].period is None
    assert default_suite(SuiteOptions(periods=())) == [
        d for d in default_suite() if d.kind != "seasonal"
    ]


def test_period_checks_do_not_depend_on_which_series_share_a_check() -> None:
    from detectors.periods import autocorrelation

    rows = np.random.default_rng(0).normal(size=(7, 96))
    together = autocorrelation(rows)
    for i in range(7):
        assert together[i].tobytes() == autocorrelation(rows[i]).tobytes()
    # and so the stream's scores do not depend on its batches
    t = np.arange(3000.0)
    recs = [
        Record(f"s{j}", float(k), f"{k}", {"x": float(np.sin(k / (5 + j)))})
        for k in t.astype(int).tolist()
        for j in range(3)
    ]
    ref = [r.score for r in score_records(Scorer(ScoringConfig()), recs, batch=500)]
    for batch in (1, 97):
        assert [r.score for r in score_records(Scorer(ScoringConfig()), recs, batch=batch)] == ref


def test_a_rhythm_in_samples_keeps_its_phase_across_missing_values() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(12_000.0)
    wave = np.sin(2 * np.pi * t / 100) + rng.normal(0, 0.05, len(t))
    keep = np.ones(len(t), dtype=bool)
    keep[9_000:9_037] = False  # 37 values missing: a third of a period
    scores, st, _ = run(Seasonal(), wave[keep][:, None], t[keep][:, None])
    found = describe(st)[0]
    assert found is not None and abs(found[0] - 100) < 0.5 and found[1] == "samples"
    after = scores[9_000 : 9_000 + 500]  # the values right after the gap
    assert (after >= 1 - 1e-3).sum() <= 1, np.flatnonzero(after >= 1 - 1e-3)
