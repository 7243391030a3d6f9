"""A plant with operating modes, for judging detection on data nobody tuned on (`make bench-plant`).

The demo plant (`anomstream.plant`) runs one steady regime; real machines do not. Here each pump
of a fleet switches between a few load set points (recurring, with short ramps), and on top of
that carries what real sensors do while nothing is wrong: an oscillation, variance bursts, phase
jumps of a slow rhythm, brief dropouts to zero, and noise of several shapes (Gaussian, Student-t,
quantised, a slow sensor bias). A training part holds normal operation only (every mode shown);
the test part holds the same plus labelled anomalies of seven kinds, each placed inside one
mode's dwell, with the signal that breaks as its culprit. Pure and seeded: a seed is a plant.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SIGNALS = ("temp", "pressure", "flow", "current", "vibration", "rpm")
KINDS = ("spike", "level_shift", "drift", "stuck", "correlation_break", "variance", "new_mode")
CULPRIT = {
    "spike": "pressure",
    "level_shift": "temp",
    "drift": "vibration",
    "stuck": "flow",
    "correlation_break": "current",
    "variance": "pressure",
    "new_mode": "rpm",
}
"""The signal each kind breaks; `new_mode` moves every load-driven signal, rpm the most."""
LENGTH = {
    "spike": 1,
    "level_shift": 200,
    "drift": 300,
    "stuck": 200,
    "correlation_break": 200,
    "variance": 150,
    "new_mode": 250,
}
START = 1_700_000_000.0


@dataclass(frozen=True, slots=True)
class Injection:
    """One labelled anomaly, in record indexes of its source (end exclusive)."""

    source: str
    kind: str
    signal: str
    start: int
    end: int


@dataclass(slots=True)
class Series:
    """One source's records: values (n, signals), and the anomaly label per record."""

    source: str
    values: np.ndarray
    label: np.ndarray
    culprit: list[str]
    modes: np.ndarray
    injections: list[Injection] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ModalPlant:
    sources: int = 4
    seed: int = 0
    train: int = 6000
    """Normal records per source in the training part."""
    test: int = 12000
    """Records per source in the test part (with the anomalies)."""
    anomalies: int = 7
    """Labelled anomalies per source in the test part (kinds in turn)."""
    modes: int = 3
    """Load set points the fleet runs at (a source uses two or all of them)."""

    @property
    def names(self) -> list[str]:
        return [f"pump-{i + 1}" for i in range(self.sources)]

    def set_points(self, rng: np.random.Generator) -> np.ndarray:
        points = np.sort(rng.uniform(0.35, 1.0, self.modes))
        while np.diff(points).min() < 0.15:  # modes far enough apart to be modes
            points = np.sort(rng.uniform(0.35, 1.0, self.modes))
        return points

    def generate(self) -> list[Series]:
        rng = np.random.default_rng(self.seed)
        points = self.set_points(rng)
        return [self._source(name, s, points, rng) for s, name in enumerate(self.names)]

    def _source(self, name: str, s: int, points: np.ndarray, rng: np.random.Generator) -> Series:
        n = self.train + self.test
        used = points if s % 2 == 0 else rng.choice(points, 2, replace=False)
        load, mode, dwells = _load_schedule(n, used, points, rng)
        injections = self._schedule(name, dwells, rng)
        new_point = points.max() + 0.25  # a set point the fleet never ran at
        for inj in injections:
            if inj.kind == "new_mode":
                load[inj.start : inj.end] = new_point
                mode[inj.start : inj.end] = -1
        values = _signals(load, rng)
        label = np.zeros(n, dtype=np.int8)
        culprit = [""] * n
        for inj in injections:
            if inj.kind != "new_mode":
                _inject(values, inj, rng)
            label[inj.start : inj.end] = 1
            culprit[inj.start : inj.end] = [inj.signal] * (inj.end - inj.start)
        _dropouts(values, label, rng)
        return Series(name, values, label, culprit, mode, injections)

    def _schedule(
        self, name: str, dwells: list[tuple[int, int]], rng: np.random.Generator
    ) -> list[Injection]:
        """Anomalies inside dwells of the test part, 60 records clear of each switch."""
        out: list[Injection] = []
        kinds = list(KINDS)
        rng.shuffle(kinds)
        free = [(a, b) for a, b in dwells if a >= self.train + 200]
        for i in range(self.anomalies):
            kind = kinds[i % len(kinds)]
            length = LENGTH[kind]
            fits = [(a, b) for a, b in free if b - a >= length + 120]
            if not fits:
                break
            a, b = fits[int(rng.integers(len(fits)))]
            start = int(rng.integers(a + 60, b - 60 - length + 1))
            out.append(Injection(name, kind, CULPRIT[kind], start, start + length))
            free.remove((a, b))
        return sorted(out, key=lambda inj: inj.start)

    def write(self, folder: Path) -> tuple[Path, Path, Path]:
        """What a user would have: `train.csv`, the first pump's normal history (what
        `anomstream train` gets); `history.csv`, every pump's; `test.csv`, what follows, with
        `label` and `culprit` columns."""
        folder.mkdir(parents=True, exist_ok=True)
        series = self.generate()
        paths = folder / "train.csv", folder / "history.csv", folder / "test.csv"
        parts = (
            (series[:1], range(self.train), False),
            (series, range(self.train), False),
            (series, range(self.train, self.train + self.test), True),
        )
        for path, (chosen, rows, labelled) in zip(paths, parts, strict=True):
            with path.open("w", newline="") as handle:
                out = csv.writer(handle)
                extra = ("label", "culprit") if labelled else ()
                out.writerow(["timestamp", "source", *SIGNALS, *extra])
                for k in rows:
                    for s, se in enumerate(chosen):
                        row = [f"{START + k + 0.01 * s:.2f}", se.source]
                        row += [_cell(v) for v in se.values[k]]
                        if labelled:
                            row += [str(se.label[k]), se.culprit[k]]
                        out.writerow(row)
        return paths


def _cell(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.4g}"


def _load_schedule(
    n: int, used: np.ndarray, points: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Load per record: dwells of 200-700 records at a set point, ramps of 0-8 records."""
    load = np.empty(n)
    mode = np.empty(n, dtype=np.int64)
    dwells = []
    k, current = 0, int(rng.integers(len(used)))
    previous = used[current]
    while k < n:
        ramp = int(rng.integers(0, 9))
        dwell = int(rng.integers(200, 701))
        target = used[current]
        end = min(k + ramp, n)
        load[k:end] = np.linspace(previous, target, ramp + 2)[1 : 1 + end - k]
        mode[k:end] = -2
        stop = min(end + dwell, n)
        load[end:stop] = target
        mode[end:stop] = int(np.flatnonzero(points == target)[0])
        dwells.append((end, stop))
        previous, k = target, stop
        current = (current + int(rng.integers(1, max(len(used), 2)))) % len(used)
    return load, mode, dwells


def _signals(load: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Six signals driven by the load, each with its own noise shape."""
    n = len(load)
    t = np.arange(n, dtype=float)
    lag = np.empty(n)  # temperature follows the load with a lag of ~60 records
    acc = load[0]
    for i, x in enumerate(load):
        acc += (x - acc) / 60.0
        lag[i] = acc
    phase = np.cumsum(np.where(rng.random(n) < 1 / 3000, rng.uniform(0, np.pi, n), 0.0))
    slow = np.sin(2 * np.pi * t / 900 + phase)  # a slow rhythm whose phase jumps now and then
    burst = np.ones(n)  # variance bursts: 3x the noise for ~50 records, ~once per 2,500
    for start in np.flatnonzero(rng.random(n) < 1 / 2500):
        burst[start : start + int(rng.integers(30, 80))] = 3.0
    bias = np.cumsum(rng.normal(0, 0.002, n))
    bias -= np.convolve(bias, np.ones(500) / 500, mode="same")  # a bounded sensor bias
    flow = 100 * load + 1.5 * np.sin(2 * np.pi * t / 45 + rng.uniform(0, 6)) + rng.normal(0, 0.8, n)
    values = np.column_stack(
        [
            40 + 30 * lag + 0.8 * slow + bias * 5 + rng.normal(0, 0.15, n),  # temp
            1 + 3 * load**2 + 0.02 * rng.standard_t(4, n) * burst,  # pressure
            flow,
            0.4 * flow + 2 + rng.normal(0, 0.12, n),  # current follows flow
            1 + 0.5 * load + 0.08 * np.sin(2 * np.pi * t / 20) + rng.normal(0, 0.02, n) * burst,
            np.round((1000 + 1000 * load + rng.normal(0, 3, n)) / 5) * 5,  # rpm, 5 rpm steps
        ]
    )
    return values


def _inject(values: np.ndarray, inj: Injection, rng: np.random.Generator) -> None:
    c = SIGNALS.index(inj.signal)
    part = slice(inj.start, inj.end)
    v = values[:, c]
    if inj.kind == "spike":
        v[inj.start] += 0.6
    elif inj.kind == "level_shift":
        v[part] += 2.0
    elif inj.kind == "drift":
        v[part] += np.linspace(0.0, 0.4, inj.end - inj.start)
    elif inj.kind == "stuck":
        v[part] = v[inj.start]
    elif inj.kind == "correlation_break":
        flow = values[:, SIGNALS.index("flow")]
        level = 0.4 * flow[inj.start - 50 : inj.start].mean() + 2
        v[part] = (
            level
            + rng.normal(0, 0.12 * 1.0, inj.end - inj.start)
            + 0.6 * np.sin(2 * np.pi * np.arange(inj.end - inj.start) / 31)
        )
    elif inj.kind == "variance":
        v[part] += 0.2 * rng.standard_normal(inj.end - inj.start)


def _dropouts(values: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> None:
    """A sensor reads 0 for 1-3 records, ~once per 4,000 records (normal: a flaky link)."""
    n = len(values)
    for start in np.flatnonzero(rng.random(n) < 1 / 4000):
        if label[max(start - 5, 0) : start + 8].any():
            continue
        c = int(rng.integers(len(SIGNALS)))
        values[start : start + int(rng.integers(1, 4)), c] = 0.0
