"""`anomstream train`: a CSV -> a self-describing model directory.

Top to bottom: choose the signals (constant ones are dropped with a warning) -> split train /
validation in time order -> scale on the training part -> windows (labelled anomalies left out)
-> fit the autoencoder with early stopping on the validation windows (all epochs, with a
warning, when none is anomaly-free) -> export to ONNX and check onnxruntime agrees with
Keras -> score the validation part with the *serving* code (onnxruntime) to learn each signal's
error scale and the calibration of the error statistic -> `model.json` and the plots.

Calibrating through the exported model is deliberate: the numbers in `model.json` describe what
the stream will compute, not what Keras computed.

This module runs the steps in that order and writes the directory; each step is a module of its
own (`training.dataset`, `.fit`, `.calibrate`, `.search`, the knobs in `.options`), so the recipe
reads top to bottom here and every step can be read and tested alone.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from detectors.autoencoder import OnnxAutoencoder, ewma, sequence_scores, sliding
from detectors.csvdata import Table
from detectors.model_spec import MODEL_FILE, SPEC_FILE, ModelSpec
from training import model as nets
from training import plots
from training.calibrate import calibrate, draft_spec
from training.dataset import Dataset, prepare, scaled_values
from training.fit import Progress, fit
from training.options import TrainError, TrainOptions
from training.search import search_recipe

# The commands, the benchmarks and the tests import these from here.
__all__ = ["PARITY_TOLERANCE", "Progress", "TrainError", "TrainOptions", "Trained", "train"]

PARITY_TOLERANCE = 1e-5


@dataclass(slots=True)
class Trained:
    """What `train` made and measured."""

    spec: ModelSpec
    directory: Path
    history: dict[str, list[float]]
    parity: float
    dropped: list[str]
    seconds: float
    search: dict[str, Any] = field(default_factory=dict)


def train(
    table: Table,
    out: Path,
    options: TrainOptions,
    progress: Progress | None = None,
    warn: Callable[[str], None] = lambda _: None,
) -> Trained:
    """Train, export, calibrate and describe one model in `out` (created or replaced)."""
    started = time.monotonic()
    data = prepare(table, options, warn)
    search: dict[str, Any] = {}
    if options.search:
        if table.labels is None:
            raise TrainError("--search needs labels (--label-col or --labels)")
        options, search = search_recipe(data, options, out)
    nets.set_seed(options.seed)
    net, history = fit(data, options, progress)
    # Built aside and moved in at the end, model.json last: a worker serving `out` keeps the
    # old model until then, and a failed run leaves `out` as it was.
    stage = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        nets.export_onnx(net, stage / MODEL_FILE)
        probe = sliding(scaled_values(data), options.window, max(1, options.window // 2))[:64]
        served = OnnxAutoencoder.open(
            draft_spec(data, options, np.ones(len(data.signals))), stage / MODEL_FILE
        )
        parity = float(np.max(np.abs(served.reconstruct(probe) - nets.predict(net, probe))))
        if parity > PARITY_TOLERANCE:
            raise TrainError(
                f"onnxruntime and Keras disagree by {parity:.2e} (> {PARITY_TOLERANCE})"
            )
        spec = calibrate(data, options, served)
        weights = hashlib.sha256(b"".join(w.tobytes() for w in net.get_weights())).digest()
        spec = _describe(spec, table, data, options, out, history, search, weights)
        (stage / SPEC_FILE).write_bytes(orjson.dumps(spec.to_json(), option=orjson.OPT_INDENT_2))
        _plot(served.with_spec(spec), data, table, options, stage, history)
        out.mkdir(parents=True, exist_ok=True)
        for made in sorted(stage.iterdir(), key=lambda f: f.name == SPEC_FILE):
            os.replace(made, out / made.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return Trained(
        spec,
        out,
        history,
        parity,
        [s for s in table.signals if s not in data.signals],
        time.monotonic() - started,
        search,
    )


def _describe(
    spec: ModelSpec,
    table: Table,
    data: Dataset,
    options: TrainOptions,
    out: Path,
    history: dict[str, list[float]],
    search: dict[str, Any],
    weights: bytes,
) -> ModelSpec:
    info: dict[str, Any] = {
        "kind": options.kind,
        "target_fap": options.target_fap,
        "threshold": spec.calibration.threshold(options.target_fap),
        "training": {
            "data": str(table.path),
            "data_sha256": hashlib.sha256(table.path.read_bytes()).hexdigest(),
            "rows": len(table),
            "train_rows": data.split,
            "validation_rows": len(table) - data.split,
            "labelled_rows_left_out": data.left_out,
            "early_stopping": data.early_stopping,
            "stride": options.stride,
            "epochs_run": len(history.get("loss", [])),
            "seed": options.seed,
            "final_loss": history["loss"][-1] if history.get("loss") else None,
            "best_val_loss": min(history["val_loss"]) if history.get("val_loss") else None,
        },
        "versions": _versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if search:
        info["search"] = search
    # The version hashes what the model computes: weights, scaler, calibration, settings; not
    # when or where it was made (nor the ONNX file, whose tensor names count up per process),
    # so retraining the same data with the same seed gives the same version.
    content = {k: v for k, v in replace(spec, info={}).to_json().items() if k != "name"}
    body = orjson.dumps(content, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    version = hashlib.sha256(weights + body).hexdigest()[:8]
    return replace(spec, name=options.name or out.name, version=version, info=info)


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in (
        "tensorflow-cpu",
        "tensorflow",
        "keras",
        "tf2onnx",
        "onnx",
        "onnxruntime",
        "numpy",
        "anomstream",
    ):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def _plot(
    served: OnnxAutoencoder,
    data: Dataset,
    table: Table,
    options: TrainOptions,
    out: Path,
    history: dict[str, list[float]],
) -> None:
    plots.plot_training_loss(history, out / "training_loss.png")
    _, per_signal = sequence_scores(served, data.values)
    spec, w = served.spec, served.spec.window
    stat = np.full(len(data.values), np.nan)  # what the calibration turns into p; NaN: no window
    stat[w - 1 :] = ewma(served.errors(sliding(data.values, w)).stat, spec.scoring.alpha)[0]
    labels = table.labels
    plots.plot_training_result(
        table.times,
        stat,
        spec.calibration.threshold(options.target_fap),
        data.split,
        out / "result.png",
        labels=labels,
        title=f"{served.label}: autoencoder error statistic, threshold at {options.target_fap:g}",
    )
    plots.plot_signal_errors(
        table.times, per_signal, list(data.signals), out / "signal_errors.png", labels=labels
    )
