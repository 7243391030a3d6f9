"""A model directory's contract: `model.json` (what the model needs and how to read its error)
and the calibration of its reconstruction error, shared by training (which writes them) and
serving (which reads them). Pure numpy: serving must not need TensorFlow.

The calibration maps a window's error statistic to a tail probability the way the univariate
detectors do: p = P(a normal window's statistic >= this one). Below the tail anchor it is the
empirical distribution of held-out normal windows; above it a generalised Pareto tail fitted to
the excesses, so that p can be read far beyond the few hundred windows a training set holds.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

SPEC_VERSION = 1
MODEL_FILE = "model.onnx"
SPEC_FILE = "model.json"
GRID = 101
"""Points of the empirical distribution kept below the tail anchor."""


class ModelError(ValueError):
    """A model directory cannot be used; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class ErrorCalibration:
    """Statistic -> tail probability: empirical body, GPD tail above `anchor`."""

    grid: tuple[float, ...]
    """Statistic at probabilities 0, 1/(GRID-1), ..., 1 of the body (up to the anchor)."""
    anchor: float
    tail: float
    """P(statistic > anchor) among normal windows."""
    xi: float
    sigma: float
    inflate: float = 1.0
    """Scale of deployment's normal statistics against the fitted ones: a model fitted on a
    short stretch meets a wider normal later (slow drift, other operating points), and its
    in-sample errors are optimistic. p(s) is read at s / inflate."""

    @classmethod
    def fit(
        cls,
        stats: np.ndarray,
        tail: float = 0.1,
        xi_limits: tuple[float, float] = (0.0, 0.25),
        inflate: float = 1.0,
    ) -> ErrorCalibration:
        """Fit on statistics of normal windows (NaN ignored)."""
        values = np.sort(np.asarray(stats, dtype=np.float64)[np.isfinite(stats)])
        if values.size < 10:
            raise ModelError(f"calibration needs at least 10 normal windows, got {values.size}")
        anchor = float(np.quantile(values, 1.0 - tail))
        body = np.quantile(values, np.linspace(0.0, 1.0 - tail, GRID))
        excess = values[values > anchor] - anchor
        if excess.size == 0:  # a flat tail: every excess is an alarm-worthy surprise
            excess = np.array([max(float(values[-1] - values[0]), 1e-12) * 1e-3])
        m1 = float(excess.mean())
        var = float(excess.var())
        ratio = m1 * m1 / var if var > 0 else 1.0
        xi = float(np.clip(0.5 * (1.0 - ratio), *xi_limits)) if excess.size >= 10 else 0.0
        sigma = 0.5 * m1 * (1.0 + ratio) if excess.size >= 10 else m1
        return cls(tuple(float(v) for v in body), anchor, tail, xi, max(sigma, 1e-12), inflate)

    def p(self, stat: np.ndarray) -> np.ndarray:
        """P(a normal statistic >= stat); 1 where stat is NaN."""
        stat = np.asarray(stat, dtype=np.float64) / self.inflate
        grid = np.asarray(self.grid)
        probs = np.linspace(1.0, self.tail, GRID)
        body = np.interp(stat, grid, probs, left=1.0, right=self.tail)
        y = np.maximum(stat - self.anchor, 0.0) / self.sigma
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if abs(self.xi) < 1e-9:
                tail = self.tail * np.exp(-y)
            else:
                tail = self.tail * np.power(1.0 + self.xi * y, -1.0 / self.xi)
        out = np.where(stat > self.anchor, tail, body)
        return np.where(np.isnan(stat), 1.0, np.clip(out, 0.0, 1.0))

    def threshold(self, p: float) -> float:
        """The statistic whose tail probability is `p`."""
        if p >= self.tail:
            probs = np.linspace(1.0, self.tail, GRID)
            return self.inflate * float(np.interp(-p, -probs, np.asarray(self.grid)))
        ratio = math.log(self.tail / p)
        if abs(self.xi) < 1e-9:
            return self.inflate * (self.anchor + self.sigma * ratio)
        return self.inflate * (self.anchor + self.sigma * math.expm1(self.xi * ratio) / self.xi)

    def to_json(self) -> dict[str, Any]:
        return {
            "grid": list(self.grid),
            "anchor": self.anchor,
            "tail": self.tail,
            "xi": self.xi,
            "sigma": self.sigma,
            "inflate": self.inflate,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ErrorCalibration:
        grid = tuple(float(v) for v in data["grid"])
        if len(grid) != GRID:
            raise ValueError(f"calibration grid has {len(grid)} points, expected {GRID}")
        return cls(
            grid,
            float(data["anchor"]),
            float(data["tail"]),
            float(data["xi"]),
            float(data["sigma"]),
            float(data.get("inflate", 1.0)),
        )


@dataclass(frozen=True, slots=True)
class Scoring:
    """How a window's reconstruction becomes one statistic (fixed at training time)."""

    span: int
    """Steps at the end of the window whose error counts (the newest ones)."""
    aggregate: str = "mean"
    """Over signals: `mean` or `max` of the per-signal normalised errors."""
    alpha: float = 1.0
    """EWMA weight of the newest statistic (1 = no smoothing)."""
    norm: str = "l1"
    """Per-signal error: `l1` mean absolute or `l2` mean squared residual over the span."""

    def __post_init__(self) -> None:
        if self.norm not in {"l1", "l2"}:
            raise ValueError(f"norm must be l1 or l2, not {self.norm!r}")
        if self.aggregate not in {"mean", "max"}:
            raise ValueError(f"aggregate must be mean or max, not {self.aggregate!r}")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], not {self.alpha}")
        if self.span < 1:
            raise ValueError(f"span must be >= 1, not {self.span}")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Everything `model.json` says that serving needs (plus the rest, kept as `info`)."""

    name: str
    version: str
    signals: tuple[str, ...]
    window: int
    center: np.ndarray
    scale: np.ndarray
    error_scale: np.ndarray
    """Mean error of each signal on normal windows: errors are compared in these units."""
    scoring: Scoring
    calibration: ErrorCalibration
    sources: tuple[str, ...] = ("*",)
    """Glob patterns of the sources this model serves."""
    path: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """What score messages carry in `model`."""
        return f"{self.name}-{self.version}"

    def serves(self, source: str) -> bool:
        return any(fnmatch.fnmatchcase(source, pattern) for pattern in self.sources)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.info,
            "format": SPEC_VERSION,
            "name": self.name,
            "version": self.version,
            "signals": list(self.signals),
            "window": self.window,
            "scaler": {"center": self.center.tolist(), "scale": self.scale.tolist()},
            "error_scale": self.error_scale.tolist(),
            "scoring": {
                "span": self.scoring.span,
                "aggregate": self.scoring.aggregate,
                "alpha": self.scoring.alpha,
                "norm": self.scoring.norm,
            },
            "calibration": self.calibration.to_json(),
            "sources": list(self.sources),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], path: Path | None = None) -> ModelSpec:
        where = path or "model.json"
        if data.get("format") != SPEC_VERSION:
            raise ModelError(f"{where}: unsupported model format {data.get('format')!r}")
        try:
            signals = tuple(str(s) for s in data["signals"])
            k = len(signals)
            center = _vector(data["scaler"]["center"], k, "scaler.center")
            scale = _vector(data["scaler"]["scale"], k, "scaler.scale")
            error_scale = _vector(data["error_scale"], k, "error_scale")
            scoring = Scoring(**data["scoring"])
            window = int(data["window"])
            if window < 1 or scoring.span > window:
                raise ValueError(f"window {window} and span {scoring.span} do not fit")
            known = {
                "format",
                "name",
                "version",
                "signals",
                "window",
                "scaler",
                "error_scale",
                "scoring",
                "calibration",
                "sources",
            }
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                signals=signals,
                window=window,
                center=center,
                scale=scale,
                error_scale=error_scale,
                scoring=scoring,
                calibration=ErrorCalibration.from_json(data["calibration"]),
                sources=tuple(str(s) for s in data.get("sources", ["*"])),
                path=path,
                info={k_: v for k_, v in data.items() if k_ not in known},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{where}: not a usable model description ({exc})") from None


def _vector(values: Sequence[float], k: int, what: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64)
    if out.shape != (k,) or not np.isfinite(out).all():
        raise ValueError(f"{what} must be {k} finite numbers")
    return out


def read_spec(directory: Path) -> ModelSpec:
    """Load `directory/model.json`, checking that the ONNX file is there too."""
    spec_path = directory / SPEC_FILE
    if not directory.is_dir():
        raise ModelError(f"model directory not found: {directory}")
    if not (directory / MODEL_FILE).is_file():
        raise ModelError(f"{directory}: no {MODEL_FILE}")
    try:
        data = orjson.loads(spec_path.read_bytes())
    except FileNotFoundError:
        raise ModelError(f"{directory}: no {SPEC_FILE}") from None
    except orjson.JSONDecodeError as exc:
        raise ModelError(f"{spec_path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{spec_path}: not a JSON object")
    return ModelSpec.from_json(data, spec_path)
