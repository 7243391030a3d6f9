"""Plots are checked for what breaks in practice: a valid PNG comes out, NaN rows (not scored
yet) do not crash, and mismatched shapes are refused instead of drawn misaligned."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes

from training.plots import plot_result, plot_signal_errors, plot_training_loss

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
