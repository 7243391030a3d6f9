"""The training data: a CSV table -> the signals kept, the time-ordered split, the scaler, windows.

Kept apart from fitting so that the checks users hit first (one source, enough rows on each side
of the split, signals that vary) read on their own, and the fit, the calibration and the search
all cut their windows the same way.

Real files carry labelled anomalies anywhere, the head included. A labelled row is never learnt
as normal: the windows touching it are not trained on, validated on or calibrated on, and the
scaler and the signal checks ignore it. When no anomaly-free validation window is left, the
model trains on the training part for all its epochs without early stopping (and says so)
rather than refusing a file a user can only label, not clean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from detectors.autoencoder import sliding
from detectors.csvdata import Table
from training.options import TrainError, TrainOptions

MIN_WINDOWS = 10
"""Fewest anomaly-free training windows to learn from (the calibration needs 10 too)."""


@dataclass(frozen=True, slots=True)
class Dataset:
    signals: tuple[str, ...]
    values: np.ndarray
    """(n, k) raw, missing values filled with the training mean."""
    split: int
    """First validation row."""
    center: np.ndarray
    scale: np.ndarray
    labels: np.ndarray
    """(n,) 0/1; zeros without labels."""
    left_out: int = 0
    """Labelled anomalous rows in the training part (their windows are not trained on)."""
    early_stopping: bool = True
    """False when the validation part holds no anomaly-free window to stop on."""


def prepare(table: Table, options: TrainOptions, warn: Callable[[str], None]) -> Dataset:
    sources = sorted(set(table.sources))
    if len(sources) > 1:  # windows would mix devices: the stream never builds those
        shown = ", ".join(sources[:3]) + (", ..." if len(sources) > 3 else "")
        raise TrainError(
            f"the file holds {len(sources)} sources ({shown}): a model learns one source's "
            "sequence; train on one source's rows (or name another --source-col)"
        )
    n = len(table)
    split = options.train_rows or round(n * options.train_fraction)
    if not 0 < split < n:
        raise TrainError(f"the training part must leave rows to validate: {split} of {n} rows")
    if split < options.window + 10:
        raise TrainError(
            f"{split} training rows are too few for a window of {options.window} "
            f"(need at least {options.window + 10})"
        )
    if n - split < options.window + 10:
        raise TrainError(
            f"{n - split} validation rows are too few for a window of {options.window} "
            f"(need at least {options.window + 10}); lower --train-fraction or --window"
        )
    labels = np.zeros(n, dtype=np.int8) if table.labels is None else table.labels
    normal = labels[:split] == 0
    left_out = int(split - normal.sum())
    clean = clean_windows(labels[:split], options.window)
    clean_train = int(clean.sum())
    if clean_train < MIN_WINDOWS or not clean[:: options.stride].any():
        raise TrainError(
            f"{clean_train} anomaly-free training windows of {options.window} rows (need "
            f"{MIN_WINDOWS}): {left_out} of the {split} training rows are labelled anomalies; "
            "train on a stretch of normal running (--train-rows, --train-fraction)"
        )
    if left_out:
        warn(
            f"{left_out} labelled anomalous rows of the {split} training rows are left out: "
            "the windows touching them are not trained on and the scaler ignores them"
        )
    early_stopping = bool(clean_windows(labels[split - options.window + 1 :], options.window).any())
    if not early_stopping:
        warn(
            f"no anomaly-free window in the validation part (rows {split + 1} to {n} are all "
            f"labelled or next to a label): trained on the first {split} rows for all "
            f"{options.epochs} epochs without early stopping, and calibrated on windows the "
            "model was fitted on, so expect more alarms than target_fap"
        )
    head = table.values[:split][normal]
    keep: list[int] = []
    for c, name in enumerate(table.signals):
        column = head[:, c]
        if np.isnan(column).all():
            warn(f"signal {name!r} has no values in the training part: dropped")
        elif np.nanstd(column) == 0:
            warn(f"signal {name!r} is constant in the training part: dropped")
        else:
            keep.append(c)
    if not keep:
        raise TrainError("no signal varies in the training part: nothing to learn")
    values = table.values[:, keep]
    center = np.nanmean(head[:, keep], axis=0)
    scale = np.nanstd(head[:, keep], axis=0)
    values = np.where(np.isnan(values), center, values)
    return Dataset(
        tuple(table.signals[c] for c in keep),
        values,
        split,
        center,
        scale,
        labels,
        left_out,
        early_stopping,
    )


def scaled_values(data: Dataset) -> np.ndarray:
    out: np.ndarray = ((data.values - data.center) / data.scale).astype(np.float32)
    return out


def training_windows(data: Dataset, scaled: np.ndarray, window: int, stride: int) -> np.ndarray:
    """Training windows (one ending at every `stride`-th row) with no labelled anomaly in them."""
    head = data.split
    clean = clean_windows(data.labels[:head], window)[::stride]
    out: np.ndarray = sliding(scaled[:head], window, stride)[clean]
    return out


def normal_windows(data: Dataset, scaled: np.ndarray, window: int) -> np.ndarray:
    """Validation windows (stride 1) with no labelled anomaly in them."""
    first = data.split - window + 1
    out: np.ndarray = sliding(scaled[first:], window)[clean_windows(data.labels[first:], window)]
    return out


def clean_windows(labels: np.ndarray, window: int) -> np.ndarray:
    """Per window (one ending at each row from `window - 1` on): no labelled anomaly in it."""
    clean: np.ndarray = sliding(labels[:, None].astype(np.float32), window).max(axis=(1, 2)) == 0
    return clean
