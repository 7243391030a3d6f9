"""Our NAB scorer: hand-made cases for each rule, a brute-force check of the optimiser, and the
published windowedGaussian figures from the shared benchmark data (skipped if it is absent)."""

from __future__ import annotations

import csv
import json
import math
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from bench.datasets import ENV_VAR, bench_root
from bench.nab.scorer import (
    MAX_TP,
    NO_DETECTION,
    NabFile,
    Profile,
    Results,
    build_file,
    load_profiles,
    load_windows,
    nab_root,
    normalize,
    optimize,
    read_results,
    scaled_sigmoid,
    score_corpus,
    score_file,
    write_results,
)

STANDARD = Profile("standard", 1.0, 0.11, 1.0)
ODD = Profile("odd", 2.0, 0.5, 3.0)  # weights that make scaling mistakes visible
START = datetime(2020, 1, 1)


def stamps(n: int) -> list[str]:
    return [(START + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S") for i in range(n)]


def label(ts: list[str], left: int, right: int) -> tuple[str, str]:
    """A window as combined_windows.json writes it, with the ".000000" suffix."""
    return (f"{ts[left]}.000000", f"{ts[right]}.000000")


def make(n: int, windows: list[tuple[int, int]], hits: list[int]) -> NabFile:
    ts = stamps(n)
    scores = np.zeros(n)
    scores[hits] = 1.0
    return build_file("cat/f.csv", ts, scores, [label(ts, a, b) for a, b in windows])


# --- the rules, one by one --------------------------------------------------------------------


def test_sigmoid_anchors() -> None:
    assert pytest.approx(0.98661, abs=1e-5) == MAX_TP
    s = scaled_sigmoid(np.array([0.0, 3.0, 3.0001, 50.0]))
    assert s[0] == 0.0 and s[1] > -1.0 and s[2] == -1.0 and s[3] == -1.0


def test_probation_length() -> None:
    assert make(100, [], []).probation == 15
    assert make(4999, [], []).probation == 749
    assert make(10_000, [], []).probation == 750


@pytest.mark.parametrize("profile", [STANDARD, ODD])
def test_left_edge_scores_exactly_tp(profile: Profile) -> None:
    f = make(1000, [(400, 499)], [400])
    assert score_file(f, 0.5, profile) == pytest.approx(profile.tp, abs=1e-12)


@pytest.mark.parametrize("profile", [STANDARD, ODD])
def test_miss_scores_minus_fn(profile: Profile) -> None:
    assert score_file(make(1000, [(400, 499)], []), 0.5, profile) == -profile.fn


def test_right_edge_and_earliest_detection() -> None:
    width = 100
    right_only = make(1000, [(400, 499)], [499])
    expected = float(scaled_sigmoid(np.array([-1.0 / width]))[0]) / MAX_TP
    assert 0 < score_file(right_only, 0.5, STANDARD) == pytest.approx(expected, abs=1e-12)
    both = make(1000, [(400, 499)], [410, 499])  # only the earliest detection counts, once
    expected = float(scaled_sigmoid(np.array([-90.0 / width]))[0]) / MAX_TP
    assert score_file(both, 0.5, STANDARD) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("profile", [STANDARD, ODD])
def test_fp_before_any_window_ends_weighs_minus_fp(profile: Profile) -> None:
    f = make(1000, [(400, 499)], [200])  # after probation (150), before the window
    assert score_file(f, 0.5, profile) == pytest.approx(-profile.fp - profile.fn, abs=1e-12)


def test_fp_after_a_window_grows_from_zero_to_minus_fp() -> None:
    base = -STANDARD.tp  # the (hit) window's own score is subtracted below
    weights = []
    for row in (500, 520, 600, 900):
        f = make(1000, [(400, 499)], [400, row])
        weights.append(score_file(f, 0.5, STANDARD) + base)
    assert -0.05 * STANDARD.fp < weights[0] < 0  # S(1/99): just below 0
    assert weights[0] > weights[1] > weights[2] > weights[3]
    assert weights[3] == pytest.approx(-STANDARD.fp, abs=1e-12)  # (900-499)/99 > 3


def test_probation_rows_are_ignored() -> None:
    f = make(1000, [(400, 499)], list(range(150)))  # every probation row detected
    assert score_file(f, 0.5, STANDARD) == -STANDARD.fn
    assert score_file(make(1000, [], list(range(150))), 0.5, STANDARD) == 0.0
    early = make(1000, [(10, 20)], [15])  # a window inside the probation is not counted
    assert early.windows == () and score_file(early, 0.5, STANDARD) == 0.0
    f = make(1000, [(400, 499)], [151])  # the first counted row is a normal FP
    assert score_file(f, 0.5, STANDARD) == pytest.approx(-STANDARD.fp - STANDARD.fn, abs=1e-12)


def test_window_ends_must_be_rows() -> None:
    ts = stamps(100)
    with pytest.raises(ValueError, match="not a timestamp"):
        build_file("c/f.csv", ts, np.zeros(100), [("2031-01-01 00:00:00.000000", ts[50])])


def test_normalize() -> None:
    assert normalize(-116.0, 116, STANDARD) == 0.0
    assert normalize(116.0, 116, STANDARD) == 100.0
    assert normalize(0.0, 116, Profile("low_fn", 1.0, 0.11, 2.0)) == pytest.approx(200 / 3)


# --- the optimiser against a brute-force sweep ------------------------------------------------


def random_corpus(seed: int) -> list[NabFile]:
    rng = np.random.default_rng(seed)
    files = []
    for k in range(6):
        n = int(rng.integers(200, 900))
        ts = stamps(n)
        windows: list[tuple[int, int]] = []
        row = math.floor(0.15 * n) - int(rng.integers(0, 20))  # may straddle the probation
        while True:
            row += int(rng.integers(10, 150))
            width = int(rng.integers(1, 40))
            if row + width >= n or k == 5:  # file 5 has no windows
                break
            windows.append((row, row + width - 1))
            row += width
        scores = rng.random(n) ** 6  # mostly low, a few spikes ...
        for a, b in windows:
            scores[a : b + 1] += rng.random(b - a + 1) * rng.random()
        rounded = np.round(np.clip(scores, 0.0, 1.0), 2)  # ... and many ties
        files.append(build_file(f"c/f{k}.csv", ts, rounded, [label(ts, a, b) for a, b in windows]))
    return files


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("profile", [STANDARD, ODD, Profile("low_fp", 1.0, 0.22, 1.0)])
def test_optimize_matches_brute_force(seed: int, profile: Profile) -> None:
    files = random_corpus(seed)
    candidates = [NO_DETECTION, *sorted({float(s) for f in files for s in f.scores}, reverse=True)]
    sweep = [sum(score_file(f, t, profile) for f in files) for t in candidates]
    best = max(sweep)
    first = next(t for t, s in zip(candidates, sweep, strict=True) if s >= best - 1e-9)
    threshold, raw = optimize(files, profile)
    assert raw == pytest.approx(best, abs=1e-9)
    assert threshold == first


def test_score_corpus_optimised_and_fixed() -> None:
    ts = stamps(1000)
    scores = np.zeros(1000)
    scores[[400, 900]] = [0.9, 0.4]  # a hit at a left edge; an FP far after the window
    files = {"c/a.csv": (ts, scores), "c/b.csv": (ts[:300], np.zeros(300))}
    windows = {"c/a.csv": [label(ts, 400, 499)], "c/b.csv": [], "c/unused.csv": []}
    best = score_corpus(files, windows, [STANDARD])["standard"]
    assert best == {"threshold": 0.9, "raw": pytest.approx(1.0), "score": pytest.approx(100.0)}
    low = score_corpus(files, windows, [STANDARD], {"standard": 0.4})["standard"]
    assert low["raw"] == pytest.approx(1.0 - STANDARD.fp)
    with pytest.raises(ValueError, match="no windows"):
        score_corpus(files, {"c/a.csv": []}, [STANDARD])


def test_optimize_without_any_detection_worth_it() -> None:
    f = make(1000, [(400, 499)], [200, 300, 600])  # only FPs: never detecting is best
    assert optimize([f], STANDARD) == (NO_DETECTION, -STANDARD.fn)


# --- result files and the data folder ---------------------------------------------------------


def test_write_then_read_results(tmp_path: Path) -> None:
    ts = stamps(50)
    values = np.linspace(0, 1, 50)
    scores = np.arange(50) / 49
    path = write_results(tmp_path, "mine", "cat/f.csv", ts, values, scores, [label(ts, 10, 19)])
    assert path == tmp_path / "mine" / "cat" / "mine_f.csv"
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "label"]
    assert [int(r["label"]) for r in rows] == [int(10 <= i <= 19) for i in range(50)]
    back = read_results(tmp_path, "mine")
    assert list(back) == ["cat/f.csv"]
    assert back["cat/f.csv"][0] == ts
    np.testing.assert_array_equal(back["cat/f.csv"][1], scores)


def test_bench_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert bench_root(tmp_path) == tmp_path.resolve()
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert bench_root() == tmp_path.resolve()
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match=ENV_VAR):
        bench_root()


# --- the published figures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def nab() -> Path:
    try:
        root = nab_root()
    except FileNotFoundError as exc:
        pytest.skip(f"NAB data not available: {exc}")
    if not (root / "labels" / "combined_windows.json").is_file():
        pytest.skip(f"NAB data not available under {root}")
    return root


@pytest.fixture(scope="module")
def gaussian_results(nab: Path) -> Results:
    return read_results(nab / "results", "windowedGaussian")


@pytest.fixture(scope="module")
def gaussian(nab: Path, gaussian_results: Results) -> list[NabFile]:
    windows = load_windows(nab)
    assert set(gaussian_results) == set(windows)
    return [build_file(k, ts, sc, windows[k]) for k, (ts, sc) in sorted(gaussian_results.items())]


def test_corpus_shape(gaussian: list[NabFile]) -> None:
    assert len(gaussian) == 58
    assert sum(len(f.scores) for f in gaussian) == 365_558
    assert sum(len(f.windows) for f in gaussian) == 116


def test_windowed_gaussian_published_scores(nab: Path, gaussian_results: Results) -> None:
    published = json.loads((nab / "results" / "final_results.json").read_text())
    expected = {"standard": 39.6495, "reward_low_FP_rate": 20.868, "reward_low_FN_rate": 47.41}
    scored = score_corpus(gaussian_results, load_windows(nab), load_profiles(nab))
    assert list(scored) == list(expected)
    for name, want in expected.items():
        assert abs(scored[name]["score"] - want) < 0.01, name
        assert scored[name]["score"] == pytest.approx(published["windowedGaussian"][name], abs=1e-6)
        assert scored[name]["threshold"] == 1.0  # as in config/thresholds.json


def test_optimize_is_fast_on_the_corpus(nab: Path, gaussian: list[NabFile]) -> None:
    started = time.perf_counter()
    for profile in load_profiles(nab):
        optimize(gaussian, profile)
    assert time.perf_counter() - started < 5.0  # one sort + cumsum, not a sweep of rescoring


@pytest.mark.parametrize("profile_name", ["standard", "reward_low_FP_rate", "reward_low_FN_rate"])
def test_windowed_gaussian_per_file_scores(
    nab: Path, gaussian: list[NabFile], profile_name: str
) -> None:
    """NAB's per-file summary (at its chosen threshold) matches ours file by file."""
    profile = next(p for p in load_profiles(nab) if p.name == profile_name)
    det = nab / "results" / "windowedGaussian"
    with (det / f"windowedGaussian_{profile_name}_scores.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["Detector"] != "Totals"]
    assert len(rows) == 58
    by_name = {f.name: f for f in gaussian}
    for r in rows:
        ours = score_file(by_name[r["File"]], float(r["Threshold"]), profile)
        assert ours == pytest.approx(float(r["Score"]), abs=1e-8), r["File"]
