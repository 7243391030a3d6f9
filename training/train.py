"""`anomstream train`: a CSV -> a self-describing model directory.

Top to bottom: choose the signals (constant ones are dropped with a warning) -> split train /
validation in time order -> scale on the training part -> windows -> fit the autoencoder with
early stopping on the validation windows -> export to ONNX and check onnxruntime agrees with
Keras -> score the validation part with the *serving* code (onnxruntime) to learn each signal's
error scale and the calibration of the error statistic -> `model.json` and the plots.

Calibrating through the exported model is deliberate: the numbers in `model.json` describe what
the stream will compute, not what Keras computed.
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
from detectors.model_spec import (
    MODEL_FILE,
    SPEC_FILE,
    ErrorCalibration,
    ModelError,
    ModelSpec,
    Scoring,
)
from training import metrics, plots
from training import model as nets

MIN_ERROR = 1e-4
"""Floor of a signal's normal error (scaled units): a signal the model reproduces perfectly
must not turn a tiny wobble into a huge error."""
PARITY_TOLERANCE = 1e-5


class TrainError(ValueError):
    """The data cannot train a model; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class TrainOptions:
    """Every knob of `anomstream train` (defaults: the recipe measured on SKAB, see README)."""

    window: int = 10
    stride: int = 1
    kind: str = "linear"
    latent: int | None = None
    """Code size (default: 30 % of window x signals)."""
    train_rows: int | None = None
    train_fraction: float = 0.9
    target_fap: float = 1e-3
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


Progress = Callable[[int, int, dict[str, float]], None]
"""(epoch done, epochs, logs) after each epoch."""


@dataclass(frozen=True, slots=True)
class _Data:
    signals: tuple[str, ...]
    values: np.ndarray
    """(n, k) raw, missing values filled with the training mean."""
    split: int
    """First validation row."""
    center: np.ndarray
    scale: np.ndarray
    labels: np.ndarray
    """(n,) 0/1; zeros without labels."""


def train(
    table: Table,
    out: Path,
    options: TrainOptions,
    progress: Progress | None = None,
    warn: Callable[[str], None] = lambda _: None,
) -> Trained:
    """Train, export, calibrate and describe one model in `out` (created or replaced)."""
    started = time.monotonic()
    data = _prepare(table, options, warn)
    search: dict[str, Any] = {}
    if options.search:
        if table.labels is None:
            raise TrainError("--search needs labels (--label-col or --labels)")
        options, search = _search(data, options, out)
    nets.set_seed(options.seed)
    net, history = _fit(data, options, progress)
    # Built aside and moved in at the end, model.json last: a worker serving `out` keeps the
    # old model until then, and a failed run leaves `out` as it was.
    stage = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        nets.export_onnx(net, stage / MODEL_FILE)
        probe = sliding(_scaled(data), options.window, max(1, options.window // 2))[:64]
        served = OnnxAutoencoder.open(
            _spec(data, options, np.ones(len(data.signals))), stage / MODEL_FILE
        )
        parity = float(np.max(np.abs(served.reconstruct(probe) - nets.predict(net, probe))))
        if parity > PARITY_TOLERANCE:
            raise TrainError(
                f"onnxruntime and Keras disagree by {parity:.2e} (> {PARITY_TOLERANCE})"
            )
        spec = _calibrate(data, options, served)
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


def _prepare(table: Table, options: TrainOptions, warn: Callable[[str], None]) -> _Data:
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
    return _Data(tuple(table.signals[c] for c in keep), values, split, center, scale, labels)


def _scaled(data: _Data) -> np.ndarray:
    out: np.ndarray = ((data.values - data.center) / data.scale).astype(np.float32)
    return out


def _normal_windows(data: _Data, scaled: np.ndarray, window: int) -> np.ndarray:
    """Validation windows (stride 1) with no labelled anomaly in them."""
    part = scaled[data.split - window + 1 :]
    out: np.ndarray = sliding(part, window)[_clean(data.labels[data.split - window + 1 :], window)]
    return out


def _clean(labels: np.ndarray, window: int) -> np.ndarray:
    """Per window (one ending at each row from `window - 1` on): no labelled anomaly in it."""
    clean: np.ndarray = sliding(labels[:, None].astype(np.float32), window).max(axis=(1, 2)) == 0
    return clean


def _fit(
    data: _Data, options: TrainOptions, progress: Progress | None
) -> tuple[Any, dict[str, list[float]]]:
    import keras

    scaled = _scaled(data)
    train_windows = sliding(scaled[: data.split], options.window, options.stride)
    valid = _normal_windows(data, scaled, options.window)
    if len(valid) == 0:
        raise TrainError("no anomaly-free window in the validation part to stop training on")
    k = len(data.signals)
    latent = options.latent or max(1, round(0.3 * options.window * k))
    rate = options.learning_rate or (1e-2 if options.kind == "linear" else 1e-3)
    net = nets.build(options.kind, options.window, k, latent, rate)
    callbacks: list[Any] = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=options.patience, restore_best_weights=True
        )
    ]
    if progress is not None:
        callbacks.append(_ProgressCallback(progress, options.epochs))
    fitted = net.fit(
        train_windows,
        train_windows,
        validation_data=(valid, valid),
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


def _spec(data: _Data, options: TrainOptions, error_scale: np.ndarray) -> ModelSpec:
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


def _calibrate(data: _Data, options: TrainOptions, draft: OnnxAutoencoder) -> ModelSpec:
    """Each signal's error scale from the windows the network was fitted on; the calibration
    from the smoothed statistic of every anomaly-free window, in time order as the stream sees
    them (training and validation part), widened by `inflate`."""
    w = options.window
    windows = sliding(data.values, w)
    ends = np.arange(w - 1, len(data.values))
    clean = _clean(data.labels, w)
    per_signal = draft.errors(windows).per_signal
    error_scale = np.maximum(per_signal[(ends < data.split) & clean].mean(axis=0), MIN_ERROR)
    spec = _spec(data, options, error_scale)
    stat, _ = ewma(draft.with_spec(spec).errors(windows).stat, options.alpha)
    try:
        calibration = ErrorCalibration.fit(stat[clean], tail=options.tail, inflate=options.inflate)
    except ModelError as exc:
        raise TrainError(str(exc)) from None
    return replace(spec, calibration=calibration)


def _describe(
    spec: ModelSpec,
    table: Table,
    data: _Data,
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
    data: _Data,
    table: Table,
    options: TrainOptions,
    out: Path,
    history: dict[str, list[float]],
) -> None:
    plots.plot_training_loss(history, out / "training_loss.png")
    p, per_signal = sequence_scores(served, data.values)
    labels = table.labels
    plots.plot_result(
        table.times,
        1.0 - p,
        1.0 - options.target_fap,
        p <= options.target_fap,
        out / "result.png",
        labels=labels,
        title=f"{served.label}: autoencoder score (training part ends at row {data.split})",
    )
    plots.plot_signal_errors(
        table.times, per_signal, list(data.signals), out / "signal_errors.png", labels=labels
    )


def _search(data: _Data, options: TrainOptions, out: Path) -> tuple[TrainOptions, dict[str, Any]]:
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
        net, _ = _fit(data, trial, None)
        nets.export_onnx(net, scratch / MODEL_FILE)
        draft = OnnxAutoencoder.open(
            _spec(data, trial, np.ones(len(data.signals))), scratch / MODEL_FILE
        )
        for alpha in (1.0, 0.5, 0.2, 0.1):
            candidate = replace(trial, alpha=alpha)
            spec = _calibrate(data, candidate, draft)
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
