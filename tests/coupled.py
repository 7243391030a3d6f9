"""A small coupled process for autoencoder tests: `b` follows `a`, `c` runs on its own.

A correlation break flips `b`'s coupling to `a` at a zero crossing of `a`: every value stays in
its usual range, so no univariate detector can see it, but the pattern across signals breaks.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

SIGNALS = ("a", "b", "c")
PERIOD = 40.0
START = 1_795_514_400.0


def coupled(n: int, seed: int = 0, break_at: int | None = None) -> np.ndarray:
    """(n, 3) values; from `break_at` on, b = -2a instead of 2a (at a zero crossing of a)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    a = np.sin(2 * np.pi * t / PERIOD) + 0.05 * rng.standard_normal(n)
    b = 2.0 * np.sin(2 * np.pi * t / PERIOD) + 0.05 * rng.standard_normal(n)
    c = np.cos(2 * np.pi * t / 13.0) + 0.05 * rng.standard_normal(n)
    if break_at is not None:
        b[break_at:] = -2.0 * np.sin(
            2 * np.pi * t[break_at:] / PERIOD
        ) + 0.05 * rng.standard_normal(n - break_at)
    return np.column_stack([a, b, c])


def zero_crossing(after: int) -> int:
    """First index >= `after` where a's sine crosses zero upwards."""
    return int(np.ceil(after / PERIOD) * PERIOD)


def write_csv(path: Path, values: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """timestamp,a,b,c[,anomaly], one row per second."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", *SIGNALS, *(["anomaly"] if labels is not None else [])])
        for i, row in enumerate(values.tolist()):
            ts = datetime.fromtimestamp(START + i, UTC).strftime("%Y-%m-%d %H:%M:%S")
            extra = [] if labels is None else [int(labels[i])]
            writer.writerow([ts, *(f"{v:.6f}" for v in row), *extra])
    return path
