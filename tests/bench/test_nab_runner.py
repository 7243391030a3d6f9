"""The NAB runner feeds NAB through the stream's own scorer and scores what it wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest

from bench.datasets import bench_root
from bench.nab import scorer as nab
from bench.nab import stream
from bench.nab.measures import flagged_share
from bench.nab.settings import apply_settings
from detectors.engine import Scorer, ScoringConfig
from detectors.persist import Persist
from detectors.registry import default_suite

FILES = ("realKnownCause/ambient_temperature_system_failure.csv", "realTraffic/speed_7578.csv")


@pytest.fixture(scope="module")
def corpus() -> tuple[Path, list[stream.NabFile]]:
    try:
        root = nab.nab_root(None)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    files = [f for f in stream.load_corpus(root / "data") if f.key in FILES]
    return root, files


def test_runner_scores_are_the_stream_scorers_alert_scores(corpus) -> None:
    _, files = corpus
    scores, _ = stream.run_stream(files, ScoringConfig(), chunk=137)
    f = files[1]
    direct = Scorer(ScoringConfig()).score_batch(f.records(), {})
    expected = [1.0 - r.alert_p if r is not None and r.escalated else 0.0 for r in direct]
    np.testing.assert_array_equal(scores[f.key], expected)
    assert 0 < np.count_nonzero(scores[f.key]) < len(expected) / 2


def test_written_results_score_the_same_as_in_memory(corpus, tmp_path: Path) -> None:
    root, files = corpus
    scores, _ = stream.run_stream(files, ScoringConfig())
    windows = nab.load_windows(root)
    for f in files:
        nab.write_results(
            tmp_path, "anomstream", f.key, f.timestamps, f.values, scores[f.key], windows[f.key]
        )
    back = nab.read_results(tmp_path, "anomstream")
    profiles = nab.load_profiles(root)
    sub = {k: windows[k] for k in FILES}
    in_memory = nab.score_corpus(
        {f.key: (f.timestamps, scores[f.key]) for f in files}, sub, profiles
    )
    from_disk = nab.score_corpus(back, sub, profiles)
    assert in_memory == from_disk
    # both files' anomalies are found: better than missing every window
    assert in_memory["standard"]["score"] > 0


def test_bench_root_error_names_the_variable(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANOMSTREAM_BENCH_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="ANOMSTREAM_BENCH_DATA"):
        bench_root(None)


def test_category_detail_adds_up_to_the_file_scores(corpus) -> None:
    root, files = corpus
    scores, _ = stream.run_stream(files, ScoringConfig())
    windows = nab.load_windows(root)
    standard = nab.Profile("standard", 1.0, 0.11, 1.0)
    threshold = 0.99
    detail = stream.category_scores(files, scores, windows, threshold)
    assert set(detail) == {"realKnownCause", "realTraffic"}
    for f in files:
        row = detail[f.key.split("/")[0]]
        built = nab.build_file(f.key, f.timestamps, scores[f.key], windows[f.key])
        assert row["raw"] == pytest.approx(nab.score_file(built, threshold, standard))
        assert row["windows"] == len(windows[f.key])
        assert 0 <= row["detected"] <= row["windows"]
        # the raw score is the windows' part plus the false positives' (negative) weight
        missed = row["windows"] - row["detected"]
        assert row["raw"] - row["fp_weight"] >= -missed - 1e-9
        assert row["fp_weight"] <= 0 and (row["fp"] > 0) == (row["fp_weight"] < 0)


def test_settings_change_copies_of_the_suite_and_config_only() -> None:
    suite = default_suite()
    config = ScoringConfig()
    changed, cfg = apply_settings(
        suite,
        config,
        [
            "persist.span=2000",
            "spike.clip=4.5",
            "config.realert_after=300",
            "config.learn_gate=true",
        ],
    )
    by_kind: dict[str, Any] = {d.kind: d for d in changed}
    assert by_kind["persist"].span == 2000 and type(by_kind["persist"].span) is int
    assert by_kind["spike"].clip == 4.5
    assert cfg.realert_after == 300 and cfg.learn_gate is True
    # the originals are untouched: the stream's defaults stay the defaults
    original: dict[str, Any] = {d.kind: d for d in suite}
    assert original["persist"].span == Persist().span
    assert config == ScoringConfig()


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("persist", "expected kind.field=value"),
        ("nope.span=3", "no detector 'nope'"),
        ("persist.spam=3", "no numeric field 'spam'"),
        ("persist.calibration=3", "no numeric field 'calibration'"),
        ("persist.span=2.5", "is not an integer"),
        ("config.learn_gate=yes", "is not true or false"),
        ("sequence.memory=1", "sequence needs memory >= 2"),
    ],
)
def test_bad_settings_are_one_line_errors(item: str, message: str) -> None:
    with pytest.raises(click.BadParameter, match=message):
        apply_settings(default_suite(), ScoringConfig(), [item])


def test_alarms_are_runs_of_flagged_records_per_source() -> None:
    """Two sources interleaved: a's flags at 1, 2 (one run) and 5; b's at 2 and 4; a warming
    record is not counted at all."""
    from types import SimpleNamespace

    def res(source: str, flagged: bool, warming: bool = False) -> Any:
        return SimpleNamespace(
            record=SimpleNamespace(source=source), is_anomaly=flagged, warming_up=warming
        )

    a = [False, True, True, False, False, True]
    b = [False, False, True, False, True, False]
    results = [res("x", True, warming=True)]
    for fa, fb in zip(a, b, strict=True):
        results += [res("a", fa), res("b", fb)]
    rate = flagged_share(results)
    assert rate.records == 5 / 12 and rate.alarms == 4 / 12


# Leave-one-category-out on a tiny corpus: three categories of one 100-row file each (probation
# 15 rows), one window at rows 50-59 in every file. Category a's window is hit at its left edge
# with score 0.9 but a has 20 false-positive rows at 0.6 before it; b's and c's windows are hit
# at 0.6. On the whole corpus 0.6 wins (a -1.2, b +1, c +1: raw 0.8); without b (or c) the other
# two prefer 0.9 (a +1, the other -1: raw 0), which misses the held-out window.
TINY_STAMPS = [f"2024-01-01 {h:02d}:{m:02d}:00" for h in range(2) for m in range(60)][:100]
TINY_WINDOW = [(TINY_STAMPS[50], TINY_STAMPS[59])]


def tiny(category: str, hit: float, fps: float | None = None) -> nab.NabFile:
    scores = np.zeros(100)
    scores[50] = hit
    if fps is not None:
        scores[20:40] = fps
    return nab.build_file(f"{category}/f.csv", TINY_STAMPS, scores, TINY_WINDOW)


STANDARD = nab.Profile("standard", 1.0, 0.11, 1.0)


def test_each_fold_optimises_on_the_other_categories_and_scores_the_held_out_one() -> None:
    from bench.nab import crossval

    files = [tiny("a", 0.9, fps=0.6), tiny("b", 0.6), tiny("c", 0.6)]
    corpus_threshold, corpus_raw = nab.optimize(files, STANDARD)
    assert corpus_threshold == 0.6 and corpus_raw == pytest.approx(0.8)
    folds = {f.category: f for f in crossval.leave_one_category_out({"d": files}, STANDARD)}
    assert [(k, f.threshold) for k, f in folds.items()] == [("a", 0.6), ("b", 0.9), ("c", 0.9)]
    assert folds["a"].raw == pytest.approx(1 - 20 * 0.11)  # its window, and its 20 FP rows
    assert folds["b"].raw == folds["c"].raw == -1.0  # missed at 0.9
    report = crossval.report({"d": files}, [STANDARD], {"standard": corpus_threshold}, "d")
    r = report["standard"]
    assert r["in_sample"]["score"] == pytest.approx(100 * (0.8 + 3) / 6)
    assert r["cross_validated"]["raw"] == pytest.approx(-1.2 - 2)
    # normalised over all 3 windows, as NAB does: null -3, perfect +3
    assert r["cross_validated"]["score"] == pytest.approx(100 * (-3.2 + 3) / 6)
    # per category, each on its own scale: a (-1.2 + 1) / 2, b and c missed (0)
    assert r["cross_validated"]["per_category"] == pytest.approx(
        {"min": -10.0, "median": 0.0, "max": 0.0, "std": np.std([-10.0, 0.0, 0.0])}
    )
    assert r["folds"]["b"]["in_sample_raw"] == pytest.approx(1.0)


def test_a_category_without_windows_counts_its_false_positives_but_has_no_own_score() -> None:
    from bench.nab import crossval

    scores = np.zeros(100)
    scores[30:35] = 0.6  # five false positives, before any window: -0.11 each
    quiet = nab.build_file("n/f.csv", TINY_STAMPS, scores, [])
    files = [tiny("b", 0.6), tiny("c", 0.6), quiet]
    r = crossval.report({"d": files}, [STANDARD], {"standard": 0.6}, "d")["standard"]
    fold = r["folds"]["n"]
    assert fold["threshold"] == 0.6 and fold["windows"] == 0 and fold["score"] is None
    assert fold["raw"] == pytest.approx(-0.55)
    # b and c are hit at 0.6 (1 - 0.55 beats missing one window); n has no scale of its own
    assert r["cross_validated"]["per_category"] == pytest.approx(
        {"min": 100.0, "median": 100.0, "max": 100.0, "std": 0.0}
    )
    assert r["cross_validated"]["raw"] == pytest.approx(2 - 0.55)


def test_folds_choose_a_knob_value_with_the_threshold_and_ties_keep_the_default() -> None:
    from bench.nab import crossval

    default = [tiny("a", 0.9, fps=0.6), tiny("b", 0.6), tiny("c", 0.6)]
    better = [tiny("a", 0.9, fps=0.5), tiny("b", 0.6), tiny("c", 0.6)]  # a's FPs now lower
    variants = {"default": default, "same": list(default), "better": better}
    folds = crossval.leave_one_category_out(variants, STANDARD)
    # holding out b or c, "better" wins on a + the other; holding out a, the three tie on b + c
    assert [f.choice for f in folds] == ["default", "better", "better"]
    assert [f.raw for f in folds] == pytest.approx([-1.2, 1.0, 1.0])
    r = crossval.report(variants, [STANDARD], {"standard": 0.6}, "default")["standard"]
    assert r["in_sample_best"] == {"choice": "better", "score": pytest.approx(100.0)}
    assert r["in_sample"]["score"] == pytest.approx(100 * 3.8 / 6)  # the default's


def test_variants_must_cover_the_same_categories() -> None:
    from bench.nab import crossval

    with pytest.raises(ValueError, match="same categories"):
        crossval.leave_one_category_out(
            {"x": [tiny("a", 0.9), tiny("b", 0.6)], "y": [tiny("a", 0.9)]}, STANDARD
        )
    with pytest.raises(ValueError, match="at least two categories"):
        crossval.leave_one_category_out({"x": [tiny("a", 0.9)]}, STANDARD)
