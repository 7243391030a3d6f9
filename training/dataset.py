"""The training data: a CSV table -> the signals kept, the time-ordered split, the scaler, windows.

Kept apart from fitting so that the checks users hit first (one source, enough rows on each side
of the split, signals that vary) read on their own, and the fit, the calibration and the search
all cut their windows the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from detectors.autoencoder import sliding
from detectors.csvdata import Table
from training.options import TrainError, TrainOptions


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
    head = table.values[:split]
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
    center = np.nanmean(values[:split], axis=0)
    scale = np.nanstd(values[:split], axis=0)
    values = np.where(np.isnan(values), center, values)
    labels = np.zeros(n, dtype=np.int8) if table.labels is None else table.labels
    return Dataset(tuple(table.signals[c] for c in keep), values, split, center, scale, labels)


def scaled_values(data: Dataset) -> np.ndarray:
    out: np.ndarray = ((data.values - data.center) / data.scale).astype(np.float32)
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
