"""The windowed autoencoders (Keras) and their export to ONNX.

Three shapes, chosen by `kind`: a linear autoencoder over the flattened window (the default:
measured best on SKAB, docs/models.md), a dense one with ReLU layers, and a 1-D convolutional one
(the SKAB Conv-AE layout). Both map (window, signals) -> (window, signals)
in scaled units, so serving only needs the window and the scaler.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# oneDNN's notice ("oneDNN custom operations are on", twice, each after absl's "All log messages
# before absl::InitializeLog()") is printed while TensorFlow loads, before any log level applies:
# only turning oneDNN off silences it (and the round-off differences it warns of). These small
# models train no slower without it (conv, 3,000 rows, 8 epochs: 3.7 s without, 4.5 s with).
# TF_ENABLE_ONEDNN_OPTS=1 brings oneDNN (and its notice) back.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras
import numpy as np
import tensorflow as tf

KINDS = ("linear", "dense", "conv")
tf.get_logger().setLevel("ERROR")  # "tf.function retracing" warnings: predict on new shapes


def set_seed(seed: int) -> None:
    """Same data and seed -> same model (single-threaded ops, fixed initialisers)."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    with contextlib.suppress(RuntimeError):  # already initialised in this process
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)


def build(
    kind: str, window: int, signals: int, latent: int = 8, learning_rate: float = 1e-3
) -> keras.Model:
    """An untrained autoencoder for (window, signals) inputs."""
    inputs = keras.Input((window, signals), name="window")
    if kind == "linear":  # a learnt principal subspace of the windows: fast, hard to overfit
        x = keras.layers.Flatten()(inputs)
        x = keras.layers.Dense(latent)(x)
        x = keras.layers.Dense(window * signals)(x)
        outputs = keras.layers.Reshape((window, signals))(x)
    elif kind == "dense":
        hidden = max(2 * latent, min(64, window * signals // 2))
        x = keras.layers.Flatten()(inputs)
        x = keras.layers.Dense(hidden, activation="relu")(x)
        x = keras.layers.Dense(latent, activation="relu")(x)
        x = keras.layers.Dense(hidden, activation="relu")(x)
        x = keras.layers.Dense(window * signals)(x)
        outputs = keras.layers.Reshape((window, signals))(x)
    elif kind == "conv":
        if window % 4:
            raise ValueError(f"the conv autoencoder needs a window divisible by 4, not {window}")
        x = keras.layers.Conv1D(32, 7, padding="same", strides=2, activation="relu")(inputs)
        x = keras.layers.Dropout(0.2)(x)
        x = keras.layers.Conv1D(16, 7, padding="same", strides=2, activation="relu")(x)
        x = keras.layers.Conv1DTranspose(16, 7, padding="same", strides=2, activation="relu")(x)
        x = keras.layers.Dropout(0.2)(x)
        x = keras.layers.Conv1DTranspose(32, 7, padding="same", strides=2, activation="relu")(x)
        outputs = keras.layers.Conv1DTranspose(signals, 7, padding="same")(x)
    else:
        raise ValueError(f"model kind must be one of {', '.join(KINDS)}, not {kind!r}")
    model = keras.Model(inputs, outputs, name=f"{kind}_autoencoder")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    return model


def export_onnx(model: keras.Model, path: Path) -> None:
    """Write the model as ONNX (Keras' own exporter, through tf2onnx)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # It prints "Saved artifact at ..."; tf2onnx probes `np.object` (a numpy 2 warning).
        warnings.filterwarnings("ignore", message=".*np.object.*", category=FutureWarning)
        model.export(str(path), format="onnx", verbose=False)


def predict(model: keras.Model, windows: np.ndarray) -> np.ndarray:
    """Keras' reconstruction, for the parity check against onnxruntime."""
    out: np.ndarray = model.predict(windows.astype(np.float32), verbose=0, batch_size=256)
    return out
