"""The knobs of `anomstream train` and its one user-facing error.

A module of their own so that every step of the recipe (data, fit, calibration, search) can
take the options and raise the error without importing the pipeline that runs the steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors.config import TARGET_FAP


class TrainError(ValueError):
    """The data cannot train a model; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class TrainOptions:
    """Every knob of `anomstream train` (defaults: the recipe measured on SKAB, docs/models.md)."""

    window: int = 10
    stride: int = 1
    kind: str = "linear"
    latent: int | None = None
    """Code size (default: 30 % of window x signals)."""
    train_rows: int | None = None
    train_fraction: float = 0.9
    target_fap: float = TARGET_FAP
    epochs: int = 60
    batch_size: int = 64
    patience: int = 5
    learning_rate: float | None = None
    """Adam's step (default: 1e-2 for the linear kind, 1e-3 for the others)."""
    seed: int = 0
    span: int | None = None
    """Newest steps of a window whose error counts (default: the whole window)."""
    aggregate: str = "mean"
    alpha: float = 0.2
    norm: str = "l1"
    tail: float = 0.01
    """Share of normal windows above the tail anchor: below it p is read off the empirical
    distribution (measured steadier on SKAB than a fitted tail), beyond it a fitted tail."""
    inflate: float = 1.6
    """Normal errors in deployment are taken this much wider than on the training windows."""
    sources: tuple[str, ...] = ("*",)
    name: str | None = None
    search: bool = False
    """With labels: search window, smoothing and threshold for the best validation F1."""
