"""PNG plots for training and evaluation runs, so a run can be judged by eye without a notebook.

The Agg backend is forced here because these run headless (CI, containers, the evaluation path);
every function writes one file and closes its figure so long sweeps do not leak memory.
No TensorFlow import: evaluation uses this module without the training stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import numpy.typing as npt

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from training.metrics import segments

__all__ = [
    "decades",
    "plot_result",
    "plot_signal_errors",
    "plot_training_loss",
    "plot_training_result",
    "result_figure",
    "training_figure",
]

_DPI = 100
_WIDTH = 12.0
_MAX_HEIGHT = 30.0
FLOOR = 1e-15
"""Smallest 1 - score plotted: below it a score of float64 is 1.0 exactly."""


def _save(fig: Figure, path: Path) -> Path:
    """Write and always close: pyplot keeps every open figure alive otherwise."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=_DPI, format="png")
    finally:
        plt.close(fig)
    return path


def _date_x(times: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Epoch seconds -> matplotlib date numbers; non-finite times become NaN (not drawn)."""
    t = np.asarray(times, dtype=np.float64)
    finite = np.isfinite(t)
    dt = np.full(t.shape, np.datetime64("NaT"), dtype="datetime64[ms]")
    dt[finite] = np.round(t[finite] * 1000.0).astype(np.int64).astype("datetime64[ms]")
    nums = mdates.date2num(dt)  # type: ignore[no-untyped-call]  # matplotlib.dates: no stubs
    return np.asarray(nums, dtype=np.float64)


def _row_edges(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Boundaries halfway between rows, so a one-row anomaly still gets a visible span."""
    if x.size == 0:
        return np.zeros(0)
    if x.size == 1:
        return np.array([x[0], x[0]])
    mid = (x[1:] + x[:-1]) / 2
    first = x[0] - (mid[0] - x[0])
    last = x[-1] + (x[-1] - mid[-1])
    return np.concatenate(([first], mid, [last]))


def _date_axis(ax: Axes) -> None:
    """Readable wall-clock ticks: operators match alarms to shift logs, not row numbers."""
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]  # no stubs
    formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)


def _shade(
    ax: Axes,
    x: npt.NDArray[np.float64],
    rows: npt.ArrayLike | None,
    label: str,
    color: str = "tab:orange",
    alpha: float = 0.25,
) -> None:
    """Shade each run of rows; only the first span gets a legend entry (none without a run)."""
    if rows is None:
        return
    edges = _row_edges(x)
    for start, end in segments(rows):
        left, right = edges[start], edges[end + 1]
        if not (np.isfinite(left) and np.isfinite(right)):
            continue
        ax.axvspan(float(left), float(right), color=color, alpha=alpha, lw=0, label=label)
        label = "_nolegend_"


def _shade_labels(ax: Axes, x: npt.NDArray[np.float64], labels: npt.ArrayLike | None) -> None:
    """Shade labelled incidents."""
    _shade(ax, x, labels, "labelled anomaly")


def _mark_row(ax: Axes, x: npt.NDArray[np.float64], row: int | None, label: str) -> None:
    """A vertical line at a row where something starts (validation, counted rows)."""
    if row is None or not 0 < row < x.size or not np.isfinite(x[row]):
        return
    ax.axvline(float(x[row]), color="tab:green", ls=":", lw=1.5, label=label)


def _points(
    ax: Axes, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], rows: np.ndarray, **style: Any
) -> None:
    """Markers at `rows` where drawable, labelled with their count; nothing (and no legend
    entry) when there are none: an empty legend entry reads as "nothing was looked for"."""
    shown = np.zeros(x.size, dtype=bool)
    shown[rows] = True
    shown &= np.isfinite(x) & np.isfinite(y)
    n = int(shown.sum())
    if n:
        label = f"{style.pop('label')} ({n})"
        ax.scatter(x[shown], y[shown], zorder=3, label=label, **style)


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize="small")


def _finish_time_plot(fig: Figure, ax: Axes, ylabel: str, title: str) -> None:
    """Dates on x, labels, grid, a legend of what was drawn: the same for every time plot."""
    _date_axis(ax)
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    _legend(ax)
    fig.tight_layout()


def _check_rows(name: str, values: npt.NDArray[np.generic], rows: int) -> None:
    if values.ndim != 1 or values.shape[0] != rows:
        raise ValueError(f"{name} must be 1-D with {rows} rows (one per time), got {values.shape}")


def decades(score: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """-log10(1 - score): how many decades below 1 a record's tail probability is (3 = one
    normal record in a thousand is this extreme). Scores that matter crowd just under 1 on a
    linear axis; here a threshold at 1 - 1e-3 sits at 3 and every decade beyond it shows.
    NaN (not scored) stays NaN; 1 - score is floored at `FLOOR`, where floats run out."""
    s = np.asarray(score, dtype=np.float64)
    p = np.clip(1.0 - s, FLOOR, 1.0)
    return np.where(np.isnan(s), np.nan, -np.log10(p))


def plot_training_loss(history: Mapping[str, Sequence[float]], path: Path) -> Path:
    """Loss per epoch (Keras `History.history` shape) to spot over- and under-fitting."""
    if "loss" not in history or len(history["loss"]) == 0:
        raise ValueError("history needs a non-empty 'loss' series")
    fig, ax = plt.subplots(figsize=(_WIDTH, 4.0))
    finite: list[npt.NDArray[np.float64]] = []
    for key, label in (("loss", "train loss"), ("val_loss", "validation loss")):
        if key not in history:
            continue
        values = np.asarray(history[key], dtype=np.float64)
        epochs = np.arange(1, values.size + 1)
        ax.plot(epochs, values, marker="o", ms=3, label=label)
        finite.append(values[np.isfinite(values)])
    pooled = np.concatenate(finite)
    if pooled.size and bool(np.all(pooled > 0)):
        ax.set_yscale("log")  # losses span decades; a linear axis hides late-epoch progress
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("training loss")
    ax.grid(True, alpha=0.3)
    _legend(ax)
    fig.tight_layout()
    return _save(fig, path)


def result_figure(
    times: np.ndarray,
    score: np.ndarray,
    threshold: float,
    detected: np.ndarray,
    labels: np.ndarray | None = None,
    title: str = "",
    warming: np.ndarray | None = None,
    from_row: int | None = None,
    events: Sequence[int] = (),
) -> Figure:
    """The score as `decades` against its threshold over time: warm-up and labelled anomalies
    shaded, the first counted row (`from_row`) marked, anomalous records and events (rows that
    raised one) as points. The caller saves or closes it (`plot_result` does both)."""
    x = _date_x(times)
    if x.ndim != 1:
        raise ValueError(f"times must be 1-D, got shape {x.shape}")
    s = np.asarray(score, dtype=np.float64)
    det = np.asarray(detected).astype(bool)
    _check_rows("score", s, x.size)
    _check_rows("detected", det, x.size)
    for name, rows in (("labels", labels), ("warming", warming)):
        if rows is not None:
            _check_rows(name, np.asarray(rows), x.size)
    fired = np.asarray(events, dtype=np.intp)
    if fired.size and (fired.min() < 0 or fired.max() >= x.size):
        raise ValueError(f"events must be rows of the {x.size} times")

    y = decades(s)
    fig, ax = plt.subplots(figsize=(_WIDTH, 4.0))
    _shade(ax, x, warming, "warm-up (no events)", color="0.6", alpha=0.2)
    _shade_labels(ax, x, labels)
    ax.plot(x, y, lw=0.8, color="tab:blue", label="score")  # NaN rows leave gaps, not zeros
    top = float(np.nanmax(y)) if np.isfinite(y).any() else 0.0
    if np.isfinite(threshold):
        level = float(decades(threshold))
        ax.axhline(level, color="black", ls="--", lw=1, label=f"threshold {threshold:.6g}")
        top = max(top, level)
    _mark_row(ax, x, from_row, f"counted from row {from_row}")
    _points(ax, x, y, np.flatnonzero(det), s=8, color="red", label="anomalous record")
    _points(ax, x, y, fired, s=60, marker="v", color="darkred", label="event")
    ax.set_ylim(0.0, max(1.0, 1.08 * top))
    _finish_time_plot(fig, ax, "−log10(1 − score)", title)
    return fig


def plot_result(
    times: np.ndarray,
    score: np.ndarray,
    threshold: float,
    detected: np.ndarray,
    path: Path,
    labels: np.ndarray | None = None,
    title: str = "",
    warming: np.ndarray | None = None,
    from_row: int | None = None,
    events: Sequence[int] = (),
) -> Path:
    """`result_figure`, written to `path`: one view per file."""
    fig = result_figure(times, score, threshold, detected, labels, title, warming, from_row, events)
    return _save(fig, path)


def training_figure(
    times: np.ndarray,
    stat: np.ndarray,
    threshold: float,
    split: int,
    labels: np.ndarray | None = None,
    title: str = "",
) -> Figure:
    """The autoencoder's error statistic over the training and the validation rows against the
    statistic at the threshold: how much room normal data leaves. (Its score is flat there: the
    calibration widens normal errors, so training rows sit below anything it calls rare.)"""
    x = _date_x(times)
    if x.ndim != 1:
        raise ValueError(f"times must be 1-D, got shape {x.shape}")
    y = np.asarray(stat, dtype=np.float64)
    _check_rows("stat", y, x.size)
    if labels is not None:
        _check_rows("labels", np.asarray(labels), x.size)
    fig, ax = plt.subplots(figsize=(_WIDTH, 4.0))
    _shade_labels(ax, x, labels)
    ax.plot(x, y, lw=0.8, color="tab:blue", label="error statistic")
    if np.isfinite(threshold):
        ax.axhline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:.4g}")
    _mark_row(ax, x, split, f"validation from row {split}")
    above = np.flatnonzero(np.isfinite(y) & (y > threshold))
    _points(ax, x, y, above, s=8, color="red", label="above threshold")
    drawn = y[np.isfinite(y)]
    if drawn.size and bool(np.all(drawn > 0)) and drawn.max() >= 10 * drawn.min():
        ax.set_yscale("log")  # errors of anomalies can be decades above normal ones
    _finish_time_plot(fig, ax, "reconstruction error statistic", title)
    return fig


def plot_training_result(
    times: np.ndarray,
    stat: np.ndarray,
    threshold: float,
    split: int,
    path: Path,
    labels: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """`training_figure`, written to `path` (`result.png` of a model directory)."""
    return _save(training_figure(times, stat, threshold, split, labels, title), path)


def plot_signal_errors(
    times: np.ndarray,
    errors: np.ndarray,
    signals: Sequence[str],
    path: Path,
    labels: np.ndarray | None = None,
) -> Path:
    """Per-signal reconstruction error, stacked, to see which sensor drives an alarm."""
    x = _date_x(times)
    err = np.asarray(errors, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"times must be 1-D, got shape {x.shape}")
    if len(signals) == 0:
        raise ValueError("signals must not be empty")
    if err.shape != (x.size, len(signals)):
        raise ValueError(
            f"errors must have shape (rows, signals) = ({x.size}, {len(signals)}), got {err.shape}"
        )
    if labels is not None:
        _check_rows("labels", np.asarray(labels), x.size)

    height = min(_MAX_HEIGHT, 1.0 + 1.6 * len(signals))
    fig, axes = plt.subplots(len(signals), 1, figsize=(_WIDTH, height), sharex=True, squeeze=False)
    for i, name in enumerate(signals):
        ax: Axes = axes[i, 0]
        _shade_labels(ax, x, labels)
        ax.plot(x, err[:, i], lw=0.8, color="tab:blue")
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
        ax.grid(True, alpha=0.3)
    bottom: Axes = axes[-1, 0]
    _date_axis(bottom)
    bottom.set_xlabel("time (UTC)")
    axes[0, 0].set_title("reconstruction error per signal")
    fig.tight_layout()
    return _save(fig, path)
