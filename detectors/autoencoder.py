"""Serving the sliding-window autoencoder with onnxruntime, batched across sources.

Each source keeps a ring buffer of its last `window` records (raw values, in the model's signal
order) in its state. For a micro-batch, every window that a new record completes, of every
source, goes into one onnxruntime call; each window's reconstruction error becomes a statistic
(`Scoring`), smoothed per source, and a tail probability through the model's calibration. The
reconstruction of the newest step is the signal's expected value; each signal's share of the
error says which signal broke the pattern.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from detectors.model_spec import MODEL_FILE, ModelError, ModelSpec, read_spec

REFINE_STEPS = 5
"""Passes that replace imputed values with the model's own reconstruction."""
MAX_GAP_SHARE = 0.25
"""A window with more than this share of one signal's values imputed gets no verdict."""
INFERENCE_CHUNK = 1024
"""Windows per onnxruntime call: bounds memory, keeps the batch large enough to amortise."""


@dataclass(frozen=True, slots=True)
class WindowErrors:
    """What the model says about n windows."""

    stat: np.ndarray
    """(n,) error statistic before smoothing."""
    per_signal: np.ndarray
    """(n, k) each signal's error, in units of its error on normal windows."""
    expected: np.ndarray
    """(n, k) reconstruction of each window's newest step, in raw units."""

    @property
    def share(self) -> np.ndarray:
        """(n, k) each signal's share of the error (rows sum to 1)."""
        total = self.per_signal.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            out: np.ndarray = np.where(
                total > 0, self.per_signal / total, 1.0 / self.per_signal.shape[1]
            )
        return out


def ewma(
    stats: np.ndarray, alpha: float, start: np.ndarray | float = float("nan")
) -> tuple[np.ndarray, np.ndarray]:
    """Causal smoothing of statistics, one time step at a time across series: `stats` is
    (steps,) or (steps, series); returns the smoothed values and the levels they end at. NaN
    entries (no verdict) stay NaN and leave the level alone; a NaN level takes the first value."""
    out = np.full(stats.shape, np.nan)
    smooth = np.broadcast_to(np.asarray(start, dtype=np.float64), stats.shape[1:]).copy()
    for t in range(len(stats)):
        value = stats[t]
        gap = np.isnan(value)
        moved = np.where(np.isnan(smooth), value, smooth + alpha * (value - smooth))
        smooth = np.where(gap, smooth, moved)
        out[t] = np.where(gap, np.nan, smooth)
    return out, smooth


class OnnxAutoencoder:
    """A loaded model directory: its spec and an onnxruntime session (one thread)."""

    def __init__(self, spec: ModelSpec, session: ort.InferenceSession) -> None:
        self.spec = spec
        self.session = session
        self.input_name = session.get_inputs()[0].name
        w = spec.window
        self._center = np.tile(spec.center, w)
        self._inv_scale = np.tile(1.0 / spec.scale, w)
        self._pool = 1.0 / (spec.scoring.span * spec.error_scale)
        """Summed span errors -> mean per step, in each signal's normal-error units."""

    @classmethod
    def open(cls, spec: ModelSpec, onnx_model: Path | bytes) -> OnnxAutoencoder:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        source = str(onnx_model) if isinstance(onnx_model, Path) else onnx_model
        where = onnx_model if isinstance(onnx_model, Path) else "the ONNX model"
        try:  # onnxruntime's errors are plain Exceptions: a bad file must be one line, not a crash
            session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{where}: onnxruntime cannot load it ({first[:200]})") from None
        wanted = [spec.window, len(spec.signals)]
        for port in (*session.get_inputs(), *session.get_outputs()):
            if list(port.shape[1:]) != wanted:
                raise ModelError(
                    f"{where}: {port.name} has shape {port.shape}, model.json says "
                    f"(batch, {spec.window}, {len(spec.signals)})"
                )
        model = cls(spec, session)
        model.check(where)
        return model

    def check(self, where: object = "the ONNX model") -> None:
        """One trial inference on a batch of two windows of the right shape (the centre): a graph
        that loads but fails at run time (a wrong element type, an impossible Reshape) or
        answers in another shape is refused here, with one line, before it serves a batch."""
        trial = np.zeros((2, self.spec.window, len(self.spec.signals)), dtype=np.float32)
        try:
            out = self.reconstruct(trial)
        except Exception as exc:  # onnxruntime raises plain Exceptions
            text = str(exc).strip()
            first = text.splitlines()[0] if text else type(exc).__name__
            raise ModelError(f"{where}: a trial inference fails ({first[:200]})") from None
        if not np.all(np.isfinite(out)):
            raise ModelError(f"{where}: a trial inference gives values that are not finite")

    @classmethod
    def load(cls, directory: Path) -> OnnxAutoencoder:
        return cls.open(read_spec(directory), directory / MODEL_FILE)

    def with_spec(self, spec: ModelSpec) -> OnnxAutoencoder:
        """The same network read with another spec (training calibrates this way)."""
        return OnnxAutoencoder(spec, self.session)

    @property
    def label(self) -> str:
        return self.spec.label

    def reconstruct(self, scaled: np.ndarray) -> np.ndarray:
        """(n, window, k) scaled windows -> their reconstructions, in chunks."""
        scaled = np.ascontiguousarray(scaled, dtype=np.float32)
        if len(scaled) == 0:
            return scaled.copy()
        parts = [
            self.session.run(None, {self.input_name: scaled[i : i + INFERENCE_CHUNK]})[0]
            for i in range(0, len(scaled), INFERENCE_CHUNK)
        ]
        out: np.ndarray = np.concatenate(parts).reshape(scaled.shape)
        return out

    def errors(self, windows: np.ndarray, observed: np.ndarray | None = None) -> WindowErrors:
        """(n, window, k) raw windows -> statistic, per-signal errors, expected newest step.

        `observed` (same shape, bool) marks real values: imputed ones feed the network but do
        not count in the error, so a gap is not mistaken for an anomaly. A signal without a real
        value in the span counts as its normal error (1); a window that is mostly guesses gets
        no statistic (NaN: the smoothing skips it, its p is 1).

        Whole windows are computed flat, (n, window * k): numpy broadcasting over a last axis of
        a few signals was most of the cost.
        Windows with imputed values are then redone with the mask (the same numbers for a window
        whatever else is in the batch: scores must not depend on batching).
        """
        spec = self.spec
        n, w, k = windows.shape
        scaled = (windows.reshape(n, w * k) - self._center) * self._inv_scale
        recon = self.reconstruct(scaled.reshape(n, w, k)).reshape(n, w * k).astype(np.float64)
        residual = recon - scaled
        size = np.abs(residual, out=residual) if spec.scoring.norm == "l1" else residual**2
        # Sum the span's steps slice by slice: the same operations for a window whatever the
        # batch size (a matrix product's blocking changes the last bits with the row count).
        first = w - spec.scoring.span
        err = size[:, first * k : (first + 1) * k].copy()
        for step in range(first + 1, w):
            err += size[:, step * k : (step + 1) * k]
        err *= self._pool
        expected = recon[:, (w - 1) * k :] * spec.scale + spec.center
        holed = np.empty(0, dtype=np.intp)
        if observed is not None:
            holed = np.flatnonzero(~observed.reshape(n, w * k).all(axis=1))
            if holed.size:
                err[holed], expected[holed] = self._masked(
                    scaled.reshape(n, w, k)[holed], recon.reshape(n, w, k)[holed], observed[holed]
                )
        stat = err.mean(axis=1) if spec.scoring.aggregate == "mean" else err.max(axis=1)
        if holed.size and observed is not None:  # mostly guesses: the model cannot judge
            judged = ((~observed[holed]).sum(axis=1) <= MAX_GAP_SHARE * w).all(axis=1)
            stat[holed] = np.where(judged, stat[holed], np.nan)
        return WindowErrors(stat, err, expected)

    def _masked(
        self, scaled: np.ndarray, recon: np.ndarray, observed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-signal errors over the real values only, after refining the imputed ones."""
        spec = self.spec
        self._refine(scaled, recon, observed)
        tail = slice(spec.window - spec.scoring.span, spec.window)
        residual = recon[:, tail] - scaled[:, tail]
        size = np.abs(residual) if spec.scoring.norm == "l1" else np.square(residual)
        seen = observed[:, tail]
        count = seen.sum(axis=1)
        err = np.where(count > 0, (size * seen).sum(axis=1) / np.maximum(count, 1), np.nan)
        err = np.where(np.isnan(err), 1.0, err / spec.error_scale)
        return err, recon[:, -1] * spec.scale + spec.center

    def _refine(self, scaled: np.ndarray, recon: np.ndarray, observed: np.ndarray) -> None:
        """Windows with imputed values: replace those by the model's reconstruction, a few
        times, so that a rough first guess does not distort the real values' reconstruction.
        In place; only the (rare) windows with gaps are run again."""
        holed = np.flatnonzero(~observed.all(axis=(1, 2)))
        if holed.size == 0:
            return
        part, gaps = scaled[holed], ~observed[holed]
        for _ in range(REFINE_STEPS):
            part = np.where(gaps, recon[holed], part)
            recon[holed] = self.reconstruct(part)
        scaled[holed] = part


@dataclass(slots=True)
class WindowState:
    """One source's ring buffer and smoothed statistic for the model it is served by."""

    model: str
    signals: tuple[str, ...]
    rows: np.ndarray
    """(filled, k) the newest records, oldest first (at most `window`), gaps imputed."""
    gaps: np.ndarray
    """(filled, k) True where `rows` holds an imputed value."""
    smooth: float = float("nan")

    @classmethod
    def new(cls, model: OnnxAutoencoder) -> WindowState:
        k = len(model.spec.signals)
        return cls(model.label, model.spec.signals, np.empty((0, k)), np.zeros((0, k), bool))

    def fits(self, model: OnnxAutoencoder) -> bool:
        return self.model == model.label and self.signals == model.spec.signals

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "signals": list(self.signals),
            "rows": self.rows.tolist(),
            "gaps": np.argwhere(self.gaps).tolist(),
            "smooth": None if np.isnan(self.smooth) else self.smooth,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WindowState:
        signals = tuple(str(s) for s in data["signals"])
        rows = np.asarray(data["rows"], dtype=np.float64).reshape(-1, len(signals))
        gaps = np.zeros(rows.shape, dtype=bool)
        for r, c in data.get("gaps", []):
            gaps[r, c] = True
        smooth = data.get("smooth")
        return cls(
            str(data["model"]), signals, rows, gaps, float("nan") if smooth is None else smooth
        )

    def adopt(self, model: OnnxAutoencoder) -> WindowState:
        """The state for a new model version: same signals keep their buffered records."""
        if self.fits(model):
            return self
        fresh = WindowState.new(model)
        if self.signals == model.spec.signals:
            fresh.rows = self.rows[-model.spec.window :]
            fresh.gaps = self.gaps[-model.spec.window :]
        return fresh


@dataclass(frozen=True, slots=True)
class WindowGrid:
    """The model's verdict on the new records of several sources, as a grid: row r of column
    j is source j's r-th new record (p 1, the rest NaN, where no window was complete)."""

    p: np.ndarray
    """(rows, sources) tail probability of the smoothed statistic."""
    share: np.ndarray
    """(rows, sources, k) each signal's share of the error."""
    expected: np.ndarray
    """(rows, sources, k) reconstruction of the newest step, raw units."""
    judged: np.ndarray
    """(rows, sources) the model gave a verdict (a full window, not mostly imputed)."""


def sliding(values: np.ndarray, window: int, stride: int = 1) -> np.ndarray:
    """(n, k) rows -> (windows, window, k), one window ending at every `stride`-th row."""
    if len(values) < window:
        return np.empty((0, window, values.shape[1]), dtype=values.dtype)
    view = np.lib.stride_tricks.sliding_window_view(values, (window, values.shape[1]))[:, 0]
    out: np.ndarray = np.ascontiguousarray(view[::stride])
    return out


def sequence_scores(model: OnnxAutoencoder, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p, per-signal error) for every row of one complete sequence (no missing values), NaN
    before the first full window: what the stream computes, for training and evaluation."""
    w = model.spec.window
    errors = model.errors(sliding(values, w))
    p = np.full(len(values), np.nan)
    per_signal = np.full(values.shape, np.nan)
    p[w - 1 :] = model.spec.calibration.p(ewma(errors.stat, model.spec.scoring.alpha)[0])
    per_signal[w - 1 :] = errors.per_signal
    return p, per_signal


def impute(rows: np.ndarray, fallback: np.ndarray, last: np.ndarray, center: np.ndarray) -> None:
    """Fill missing values in place: the detectors' expected value, else the last one, else the
    training centre. The record is flagged `missing` by the scorer."""
    holed = np.isnan(rows).any(axis=1)
    if not holed.any():
        return
    for t in range(len(rows)):
        row = rows[t]
        if not holed[t]:
            last = row
            continue
        gap = np.isnan(row)
        guess = np.where(np.isnan(fallback[t]), last, fallback[t])
        row[gap] = np.where(np.isnan(guess), center, guess)[gap]
        last = row


def score_sources(
    model: OnnxAutoencoder,
    states: Sequence[WindowState],
    new_rows: Sequence[np.ndarray],
    new_gaps: Sequence[np.ndarray],
) -> WindowGrid:
    """Score every source's new records ((m, k) each, imputed where `new_gaps`) in one
    inference call.

    Updates each state's buffer and smoothed statistic in place.
    """
    spec = model.spec
    w, k = spec.window, len(spec.signals)
    ends_at: list[np.ndarray] = []
    spans: list[tuple[int, int]] = []
    histories: list[tuple[np.ndarray, np.ndarray]] = []
    base = 0
    for state, rows, gaps in zip(states, new_rows, new_gaps, strict=True):
        history = np.concatenate([state.rows, rows])
        holes = np.concatenate([state.gaps, gaps])
        histories.append((history, holes))
        # Windows end at each new record that has w - 1 records before it.
        first_end = max(len(state.rows), w - 1)
        ends = max(len(history) - first_end, 0)
        ends_at.append(base + np.arange(first_end, first_end + ends))
        spans.append((len(rows) - ends, ends))
        base += len(history)
    # Every window of every source in one gather from the concatenated histories.
    index = np.concatenate(ends_at)[:, None] + np.arange(1 - w, 1)
    stacked = np.concatenate([h for h, _ in histories])[index]
    seen = ~np.concatenate([g for _, g in histories])[index]
    errors = model.errors(stacked, seen)
    # Lay every source's new records out as columns of a (steps x sources) grid: the windows
    # fill the ends of the columns, and the smoothing runs one step at a time across sources.
    lengths = np.array([len(r) for r in new_rows])
    skips = np.array([skip for skip, _ in spans])
    rows_at = np.concatenate([np.arange(skip, m) for skip, m in zip(skips, lengths, strict=True)])
    cols_at = np.repeat(np.arange(len(states)), lengths - skips)
    grid = np.full((int(lengths.max(initial=0)), len(states)), np.nan)
    grid[rows_at, cols_at] = errors.stat
    grid, smooth = ewma(grid, spec.scoring.alpha, np.array([state.smooth for state in states]))
    p_grid = spec.calibration.p(grid)  # one call for every source: it has a fixed cost
    judged = np.isfinite(grid)
    share_grid = np.full((*grid.shape, k), np.nan)
    share_grid[rows_at, cols_at] = errors.share
    expected_grid = np.full((*grid.shape, k), np.nan)
    expected_grid[rows_at, cols_at] = errors.expected
    for j, (state, (history, holes)) in enumerate(zip(states, histories, strict=True)):
        state.smooth = float(smooth[j])
        state.rows = history[-w:].copy()
        state.gaps = holes[-w:].copy()
    return WindowGrid(p_grid, share_grid, expected_grid, judged)
