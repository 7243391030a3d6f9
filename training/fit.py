"""Fitting the Keras autoencoder: training windows in, the fitted network and its history out.

The only step of the recipe that runs TensorFlow (imported inside, so that importing the
package stays cheap); the model itself is `training.model`, the data cut is `training.dataset`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from training import model as nets
from training.dataset import Dataset, normal_windows, scaled_values, training_windows
from training.options import TrainOptions

Progress = Callable[[int, int, dict[str, float]], None]
"""(epoch done, epochs, logs) after each epoch."""


def fit(
    data: Dataset, options: TrainOptions, progress: Progress | None
) -> tuple[Any, dict[str, list[float]]]:
    import keras

    scaled = scaled_values(data)
    train_windows = training_windows(data, scaled, options.window, options.stride)
    valid = normal_windows(data, scaled, options.window)
    k = len(data.signals)
    latent = options.latent or max(1, round(0.3 * options.window * k))
    rate = options.learning_rate or (1e-2 if options.kind == "linear" else 1e-3)
    net = nets.build(options.kind, options.window, k, latent, rate)
    callbacks: list[Any] = []
    if len(valid):  # else every epoch runs (`prepare` warned): nothing clean to stop on
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=options.patience, restore_best_weights=True
            )
        )
    if progress is not None:
        callbacks.append(_ProgressCallback(progress, options.epochs))
    fitted = net.fit(
        train_windows,
        train_windows,
        validation_data=(valid, valid) if len(valid) else None,
        epochs=options.epochs,
        batch_size=options.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    history = {k: [float(v) for v in vals] for k, vals in fitted.history.items()}
    return net, history


def _ProgressCallback(progress: Progress, epochs: int) -> Any:  # noqa: N802 - a class factory
    import keras

    class Callback(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            progress(epoch + 1, epochs, dict(logs or {}))

    return Callback()
