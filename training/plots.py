"""PNG plots for training and evaluation runs, so a run can be judged by eye without a notebook.

The Agg backend is forced here because these run headless (CI, containers, the evaluation path);
every function writes one file and closes its figure so long sweeps do not leak memory.
No TensorFlow import: evaluation uses this module without the training stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

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

__all__ = ["plot_result", "plot_signal_errors", "plot_training_loss"]

_DPI = 100
_WIDTH = 12.0
_MAX_HEIGHT = 30.0


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


def _shade_labels(ax: Axes, x: npt.NDArray[np.float64], labels: npt.ArrayLike | None) -> None:
    """Shade labelled incidents; only the first span gets a legend entry."""
    if labels is None:
        return
    edges = _row_edges(x)
    legend = "labelled anomaly"
    for start, end in segments(labels):
        left, right = edges[start], edges[end + 1]
        if not (np.isfinite(left) and np.isfinite(right)):
            continue
        ax.axvspan(float(left), float(right), color="tab:orange", alpha=0.25, lw=0, label=legend)
        legend = "_nolegend_"


def _check_rows(name: str, values: npt.NDArray[np.generic], rows: int) -> None:
    if values.ndim != 1 or values.shape[0] != rows:
        raise ValueError(f"{name} must be 1-D with {rows} rows (one per time), got {values.shape}")


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
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_result(
    times: np.ndarray,
    score: np.ndarray,
    threshold: float,
    detected: np.ndarray,
    path: Path,
    labels: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """Score against its threshold over time, alarms marked, truth shaded: one view per file."""
    x = _date_x(times)
    if x.ndim != 1:
        raise ValueError(f"times must be 1-D, got shape {x.shape}")
    s = np.asarray(score, dtype=np.float64)
    det = np.asarray(detected).astype(bool)
    _check_rows("score", s, x.size)
    _check_rows("detected", det, x.size)
    if labels is not None:
        _check_rows("labels", np.asarray(labels), x.size)

    fig, ax = plt.subplots(figsize=(_WIDTH, 4.0))
    _shade_labels(ax, x, labels)
    ax.plot(x, s, lw=0.8, color="tab:blue", label="score")  # NaN rows leave gaps, not zeros
    if np.isfinite(threshold):
        ax.axhline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:.4g}")
    shown = det & np.isfinite(s) & np.isfinite(x)
    ax.scatter(x[shown], s[shown], s=8, color="red", zorder=3, label="detected")
    _date_axis(ax)
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("anomaly score")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return _save(fig, path)


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
