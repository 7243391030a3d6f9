"""Calibration through the exported model: each signal's error scale and the error statistic's map.

It scores with the serving code (onnxruntime, `detectors.autoencoder`), not with Keras, so the
numbers that end up in `model.json` describe what the stream will compute.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from detectors.autoencoder import OnnxAutoencoder, ewma, sliding
from detectors.model_spec import ErrorCalibration, ModelError, ModelSpec, Scoring
from training.dataset import Dataset, clean_windows
from training.options import TrainError, TrainOptions

MIN_ERROR = 1e-4
"""Floor of a signal's normal error (scaled units): a signal the model reproduces perfectly
must not turn a tiny wobble into a huge error."""


def draft_spec(data: Dataset, options: TrainOptions, error_scale: np.ndarray) -> ModelSpec:
    placeholder = ErrorCalibration.fit(np.linspace(0.0, 1.0, 20))
    return ModelSpec(
        name=options.name or "model",
        version="draft",
        signals=data.signals,
        window=options.window,
        center=data.center,
        scale=data.scale,
        error_scale=error_scale,
        scoring=Scoring(
            options.span or options.window, options.aggregate, options.alpha, options.norm
        ),
        calibration=placeholder,
        sources=options.sources,
    )


def calibrate(data: Dataset, options: TrainOptions, draft: OnnxAutoencoder) -> ModelSpec:
    """Each signal's error scale from the windows the network was fitted on; the calibration
    from the smoothed statistic of every anomaly-free window, in time order as the stream sees
    them (training and validation part), widened by `inflate`."""
    w = options.window
    windows = sliding(data.values, w)
    ends = np.arange(w - 1, len(data.values))
    clean = clean_windows(data.labels, w)
    per_signal = draft.errors(windows).per_signal
    error_scale = np.maximum(per_signal[(ends < data.split) & clean].mean(axis=0), MIN_ERROR)
    spec = draft_spec(data, options, error_scale)
    stat, _ = ewma(draft.with_spec(spec).errors(windows).stat, options.alpha)
    try:
        calibration = ErrorCalibration.fit(stat[clean], tail=options.tail, inflate=options.inflate)
    except ModelError as exc:
        raise TrainError(str(exc)) from None
    return replace(spec, calibration=calibration)
