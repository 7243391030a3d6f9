"""`anomstream train --search`: window length, smoothing and threshold for the best validation F1.

It retrains once per window length, so it is the slow path of `train` and only runs with
labels; it reuses the fit and the calibration of the plain recipe, and returns the options the
final model is then trained with.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from detectors.autoencoder import OnnxAutoencoder, sequence_scores
from detectors.model_spec import MODEL_FILE
from training import metrics
from training import model as nets
from training.calibrate import calibrate, draft_spec
from training.dataset import Dataset
from training.fit import fit
from training.options import TrainError, TrainOptions


def search_recipe(
    data: Dataset, options: TrainOptions, out: Path
) -> tuple[TrainOptions, dict[str, Any]]:
    """Best validation F1 over window length, smoothing and threshold (labels required)."""
    base = options.window
    windows = sorted({max(4, base // 2 // 4 * 4), base, base * 2})
    best: tuple[float, TrainOptions, dict[str, Any]] | None = None
    scratch = out.parent / f".{out.name}.search-{os.getpid()}"
    for window in windows:
        if data.split < window + 10 or len(data.values) - data.split < window + 10:
            continue
        trial = replace(options, window=window, span=None, search=False)
        nets.set_seed(options.seed)
        net, _ = fit(data, trial, None)
        nets.export_onnx(net, scratch / MODEL_FILE)
        draft = OnnxAutoencoder.open(
            draft_spec(data, trial, np.ones(len(data.signals))), scratch / MODEL_FILE
        )
        for alpha in (1.0, 0.5, 0.2, 0.1):
            candidate = replace(trial, alpha=alpha)
            spec = calibrate(data, candidate, draft)
            served = draft.with_spec(spec)
            p, _ = sequence_scores(served, data.values)
            p_valid = p[data.split :]
            truth = data.labels[data.split :]
            finite = p_valid[np.isfinite(p_valid)]
            for level in np.unique(np.quantile(finite, np.linspace(0.0, 0.5, 51))):
                f1 = metrics.confusion(truth, p_valid <= level).f1
                if best is None or f1 > best[0]:
                    chosen = {
                        "window": window,
                        "alpha": alpha,
                        "target_fap": float(level),
                        "validation_f1": f1,
                    }
                    best = (f1, replace(candidate, target_fap=float(max(level, 1e-12))), chosen)
    shutil.rmtree(scratch, ignore_errors=True)
    if best is None:
        raise TrainError("too few rows to search any window length")
    return best[1], best[2]
