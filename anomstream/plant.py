"""A synthetic plant for the demo: sources with six seasonal, noisy, correlated signals, into which
labelled anomalies of five kinds are injected on a schedule.

Pure and seeded (numpy), so the demo, its test and offline tuning see the same data. Time is
simulated: record k of a source is stamped `start + k / rate_per_source`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

SIGNALS = ("temp", "pressure", "flow", "current", "vibration", "rpm")
KINDS = ("spike", "level_shift", "drift", "stuck", "correlation_break")


@dataclass(frozen=True, slots=True)
class Injection:
    """One labelled anomaly: which source, what kind, on which signal, over which seconds."""

    source: str
    kind: str
    signal: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Plant:
    sources: int = 3
    rate: float = 300.0
    """Records per second over all sources."""
    duration: float = 60.0
    seed: int = 7
    warm_fraction: float = 0.35
    """No anomaly before this share of the duration: the detectors warm up first."""
    inject: bool = True
    """False: the plant running normally (the demo's model trains on that)."""

    @property
    def names(self) -> list[str]:
        return [f"pump-{i + 1}" for i in range(self.sources)]

    @property
    def per_source(self) -> float:
        return self.rate / self.sources

    def schedule(self) -> list[Injection]:
        """Each kind once, spread over the sources and the time after warm-up."""
        if not self.inject:
            return []
        first = self.duration * self.warm_fraction
        slot = (self.duration * 0.92 - first) / len(KINDS)
        plan = {
            "spike": ("temp", 0.02),
            "level_shift": ("pressure", 0.6),
            "drift": ("temp", 0.9),
            "stuck": ("vibration", 0.6),
            "correlation_break": ("current", 0.8),
        }
        out = []
        for i, kind in enumerate(KINDS):
            signal, length = plan[kind]
            start = first + i * slot
            out.append(
                Injection(
                    self.names[i % self.sources],
                    kind,
                    signal,
                    start,
                    start + max(length * slot, 0.05),
                )
            )
        return out

    def generate(self, start_ts: float) -> list[tuple[float, str, dict[str, float]]]:
        """All records in time order: (epoch seconds, source, signals)."""
        rng = np.random.default_rng(self.seed)
        n = int(self.duration * self.per_source)
        injections = self.schedule()
        rows: list[tuple[float, str, dict[str, float]]] = []
        per_source = {}
        for s, name in enumerate(self.names):
            t = np.arange(n) / self.per_source
            phase = rng.uniform(0, 2 * np.pi, len(SIGNALS))
            flow = 50 + 5 * np.sin(2 * np.pi * t / 30 + phase[2]) + rng.normal(0, 0.5, n)
            values = {
                "temp": 70 + 3 * np.sin(2 * np.pi * t / 40 + phase[0]) + rng.normal(0, 0.3, n),
                "pressure": 3
                + 0.2 * np.sin(2 * np.pi * t / 25 + phase[1])
                + rng.normal(0, 0.03, n),
                "flow": flow,
                "current": 0.4 * flow + 2 + rng.normal(0, 0.1, n),
                "vibration": 1
                + 0.1 * np.sin(2 * np.pi * t / 20 + phase[4])
                + rng.normal(0, 0.05, n),
                "rpm": 1500 + 10 * np.sin(2 * np.pi * t / 35 + phase[5]) + rng.normal(0, 2, n),
            }
            for inj in injections:
                if inj.source == name:
                    _inject(values, t, inj, rng)
            per_source[s] = (t, values)
        for k in range(n):
            for s, name in enumerate(self.names):
                t, values = per_source[s]
                ts = start_ts + t[k] + s * 1e-3
                rows.append((ts, name, {sig: round(float(values[sig][k]), 4) for sig in SIGNALS}))
        return rows


def _inject(
    values: dict[str, np.ndarray], t: np.ndarray, inj: Injection, rng: np.random.Generator
) -> None:
    inside = (t >= inj.start) & (t < inj.end)
    if not inside.any():
        return
    idx = np.flatnonzero(inside)
    v = values[inj.signal]
    if inj.kind == "spike":
        v[idx[0]] += 12.0
    elif inj.kind == "level_shift":
        v[idx] += 0.6
    elif inj.kind == "drift":
        v[idx] += np.linspace(0.0, 12.0, len(idx))
    elif inj.kind == "stuck":
        v[idx] = v[idx[0]]
    elif inj.kind == "correlation_break":
        # current stops following flow: same level and noise, no longer correlated.
        v[idx] = 0.4 * 50 + 2 + rng.normal(0, 0.1, len(idx)) + 2 * np.sin(2 * np.pi * t[idx] / 7.0)


def iso(ts: float) -> str:
    """RFC 3339 with milliseconds, as a device would send it."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Verdict:
    """How the detector did against the schedule."""

    detected: dict[Injection, float | None]
    """Injection -> seconds from its start to the first event, None if missed."""
    false_alarms: int
    """Events outside every injection window (plus the grace period) of their source."""
    false_episodes: int


def judge(
    schedule: list[Injection],
    events: list[tuple[str, float, str | None]],
    start_ts: float,
    grace: float = 3.0,
) -> Verdict:
    """Match events (source, epoch seconds, episode id) against the labelled injections."""
    detected: dict[Injection, float | None] = dict.fromkeys(schedule)
    false_alarms = 0
    false_episodes: set[str | None] = set()
    for source, ts, episode in events:
        t = ts - start_ts
        hit = False
        for inj in schedule:
            if inj.source == source and inj.start - 0.05 <= t <= inj.end + grace:
                hit = True
                delay = max(t - inj.start, 0.0)
                previous = detected[inj]
                if previous is None or delay < previous:
                    detected[inj] = delay
        if not hit:
            false_alarms += 1
            false_episodes.add(episode)
    return Verdict(detected, false_alarms, len(false_episodes))
