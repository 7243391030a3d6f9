"""Plots are checked for what breaks in practice: a valid PNG comes out, NaN rows (not scored
yet) do not crash, and mismatched shapes are refused instead of drawn misaligned; and for what
they show: the data drawn (scores in decades), the marks, and no legend entry for nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon, Rectangle

from training.plots import (
    FLOOR,
    decades,
    plot_result,
    plot_signal_errors,
    plot_training_loss,
    plot_training_result,
    result_figure,
    training_figure,
)

PNG = b"\x89PNG\r\n\x1a\n"
N = 300


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG)
    assert len(data) > 1024


@pytest.fixture
def series():
    rng = np.random.default_rng(0)
    times = 1_700_000_000.0 + np.arange(N) * 60.0
    score = rng.random(N)
    score[:20] = np.nan  # before the first full window
    labels = np.zeros(N, dtype=int)
    labels[100:130] = 1
    labels[-5:] = 1  # ends at the last row
    labels[0] = 1  # single row at the start
    detected = score > 0.9
    return times, score, labels, detected


def test_no_tensorflow_import():
    # fresh interpreter: other tests in the session may have imported TensorFlow already
    code = (
        "import sys, training.metrics, training.plots; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')); "
        "print(bad)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_training_loss(tmp_path):
    history = {"loss": [1.0, 0.5, 0.2, 0.1], "val_loss": [1.2, 0.6, 0.3, 0.25]}
    out = plot_training_loss(history, tmp_path / "nested" / "dir" / "loss.png")
    assert out == tmp_path / "nested" / "dir" / "loss.png"
    assert_png(out)
    assert plt.get_fignums() == []


def test_training_loss_without_val_and_with_nan(tmp_path):
    assert_png(plot_training_loss({"loss": [0.5, float("nan"), 0.1]}, tmp_path / "a.png"))
    # non-positive values -> linear scale, still fine
    assert_png(plot_training_loss({"loss": [0.5, -0.1, 0.0]}, tmp_path / "b.png"))


def test_training_loss_needs_loss(tmp_path):
    with pytest.raises(ValueError):
        plot_training_loss({"val_loss": [1.0]}, tmp_path / "x.png")


@pytest.mark.parametrize("with_labels", [False, True])
def test_result(tmp_path, series, with_labels):
    times, score, labels, detected = series
    out = plot_result(
        times,
        score,
        0.9,
        detected,
        tmp_path / "result.png",
        labels=labels if with_labels else None,
        title="valve1/3.csv",
    )
    assert_png(out)
    assert plt.get_fignums() == []


def test_result_all_nan_score(tmp_path, series):
    times, _, labels, _ = series
    score = np.full(N, np.nan)
    detected = np.ones(N, dtype=bool)  # detected but unscored rows are not drawn
    assert_png(plot_result(times, score, float("nan"), detected, tmp_path / "r.png", labels))


def test_result_nan_not_drawn_as_zero(tmp_path, series, monkeypatch):
    times, score, _, detected = series
    drawn = []
    original = Axes.plot

    def spy(self, *args, **kwargs):
        drawn.append(np.asarray(args[1], dtype=float))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", spy)
    plot_result(times, score, 0.9, detected, tmp_path / "r.png")
    (y,) = drawn
    assert np.isnan(y[:20]).all()


def test_result_shape_mismatch(tmp_path, series):
    times, score, labels, detected = series
    with pytest.raises(ValueError):
        plot_result(times, score[:-1], 0.9, detected, tmp_path / "r.png")
    with pytest.raises(ValueError):
        plot_result(times, score, 0.9, detected[:-1], tmp_path / "r.png")
    with pytest.raises(ValueError):
        plot_result(times, score, 0.9, detected, tmp_path / "r.png", labels=labels[:-1])
    assert not (tmp_path / "r.png").exists()


@pytest.mark.parametrize("with_labels", [False, True])
def test_signal_errors(tmp_path, series, with_labels):
    times, _, labels, _ = series
    signals = ["Accelerometer1RMS", "Current", "Pressure"]
    errors = np.random.default_rng(1).random((N, len(signals)))
    errors[:20] = np.nan
    errors[50, 1] = np.nan
    out = plot_signal_errors(
        times,
        errors,
        signals,
        tmp_path / "sub" / "errors.png",
        labels=labels if with_labels else None,
    )
    assert_png(out)
    assert plt.get_fignums() == []


def test_signal_errors_single_signal(tmp_path, series):
    times, _, _, _ = series
    assert_png(plot_signal_errors(times, np.ones((N, 1)), ["x"], tmp_path / "one.png"))


def test_signal_errors_shape_mismatch(tmp_path, series):
    times, _, labels, _ = series
    with pytest.raises(ValueError):
        plot_signal_errors(times, np.ones((N, 2)), ["a", "b", "c"], tmp_path / "e.png")
    with pytest.raises(ValueError):
        plot_signal_errors(times, np.ones((N - 1, 2)), ["a", "b"], tmp_path / "e.png")
    with pytest.raises(ValueError):
        plot_signal_errors(times, np.ones(N), ["a"], tmp_path / "e.png")
    with pytest.raises(ValueError):
        plot_signal_errors(times, np.ones((N, 2)), ["a", "b"], tmp_path / "e.png", labels[:5])
    assert not (tmp_path / "e.png").exists()


def legend(fig: Figure) -> dict[str, object]:
    """Label -> handle of the figure's legend, closing the figure; every entry must show data."""
    (ax,) = fig.axes
    handles, names = ax.get_legend_handles_labels()
    plt.close(fig)
    for handle, name in zip(handles, names, strict=True):
        if isinstance(handle, PathCollection):
            assert len(np.asarray(handle.get_offsets())) > 0, name
        elif isinstance(handle, Line2D):
            assert np.isfinite(np.asarray(handle.get_ydata(), dtype=float)).any(), name
        else:
            assert isinstance(handle, Polygon | Rectangle), (name, handle)
    return dict(zip(names, handles, strict=True))


def test_decades_is_minus_log10_of_one_minus_the_score():
    got = decades([0.0, 0.9, 0.999, 1 - 1e-9, 1.0, np.nan])
    want = [0.0, 1.0, 3.0, 9.0, -np.log10(FLOOR), np.nan]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert float(decades(1.0)) == 15.0  # a score of exactly 1 is drawn at the floor, finite
    rng = np.random.default_rng(3)
    s = np.sort(rng.random(100))
    assert np.all(np.diff(decades(s)) >= 0)  # the order of scores is kept


def test_result_draws_the_score_in_decades_and_the_threshold_at_its_decade(series):
    times, score, labels, detected = series
    fig = result_figure(times, score, 0.999, detected, labels)
    ax = fig.axes[0]
    line, threshold = ax.get_lines()[:2]
    np.testing.assert_array_equal(line.get_ydata(), decades(score))
    assert np.asarray(threshold.get_ydata())[0] == pytest.approx(3.0)
    assert ax.get_ylim()[1] >= 3.0
    assert ax.get_ylabel() == "−log10(1 − score)"
    names = legend(fig)
    n = int((detected & np.isfinite(score)).sum())  # unscored rows are not drawn
    assert set(names) == {"score", "threshold 0.999", "labelled anomaly", f"anomalous record ({n})"}


def test_a_result_without_detections_has_no_empty_legend_entries(series):
    times, score, _, _ = series
    names = legend(result_figure(times, score, 0.999, np.zeros(N, dtype=bool)))
    assert set(names) == {"score", "threshold 0.999"}


def test_result_marks_warm_up_the_first_counted_row_and_events(series):
    times, score, labels, detected = series
    warming = np.arange(N) < 50
    fired = [int(i) for i in np.flatnonzero(detected)[:3]]
    fig = result_figure(
        times, score, 0.999, detected, labels, warming=warming, from_row=120, events=fired
    )
    ax = fig.axes[0]
    names = legend(fig)
    assert {"warm-up (no events)", "counted from row 120", "event (3)"} <= set(names)
    start = names["counted from row 120"]
    assert isinstance(start, Line2D)
    x = np.asarray(ax.get_lines()[0].get_xdata())
    assert np.asarray(start.get_xdata())[0] == x[120]
    marks = names["event (3)"]
    assert isinstance(marks, PathCollection)
    np.testing.assert_array_equal(np.asarray(marks.get_offsets())[:, 0], x[fired])


def test_result_refuses_events_outside_its_rows(series):
    times, score, _, detected = series
    with pytest.raises(ValueError):
        result_figure(times, score, 0.999, detected, events=[N])
    assert plt.get_fignums() == []


def test_training_plot_draws_the_error_statistic_against_its_threshold(tmp_path, series):
    times, _, labels, _ = series
    stat = np.random.default_rng(2).lognormal(0.0, 0.2, N)
    stat[:9] = np.nan  # before the first full window
    fig = training_figure(times, stat, 3.0, 240, labels, "m: autoencoder")
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), stat)
    assert ax.get_yscale() == "linear"  # a narrow range: log ticks would say little
    names = legend(fig)
    assert set(names) == {
        "error statistic",
        "threshold 3",
        "validation from row 240",
        "labelled anomaly",
    }  # nothing above the threshold: no entry for it
    stat[200] = 30.0
    fig = training_figure(times, stat, 3.0, 240)
    assert fig.axes[0].get_yscale() == "log"  # an anomaly decades above the rest
    names = legend(fig)
    assert "above threshold (1)" in names
    assert_png(plot_training_result(times, stat, 3.0, 240, tmp_path / "result.png", labels))
    assert plt.get_fignums() == []
