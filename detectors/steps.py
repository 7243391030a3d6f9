"""The step loop: one time step at a time, every detector over every series of the batch.

Per step: each detector's raw statistic, calibrated to a tail probability, fused per signal and
per record (`detectors.fusion`), the signal's expected value and band, then learning (unless the
record is late, or anomalous with the learning gate on). What the suite can do is read from the
detectors' declared capabilities once (`SuitePlan`), never from their kinds or classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import cast

import numpy as np

from detectors.batch import Layout
from detectors.calibration import CalibrationStack
from detectors.config import ScoringConfig
from detectors.fusion import DECADES, fuse_step, per_test_level
from detectors.protocol import Detector, Period, Rarity, Raw, Rhythm
from detectors.source_state import packing_of
from detectors.state import Packing, State


def signal_matches(name: str, patterns: Sequence[str]) -> bool:
    """Whether glob `patterns` select `name`; `!pattern` excludes (the last match wins)."""
    hit = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if fnmatchcase(name, pattern[1:]):
                hit = False
        elif fnmatchcase(name, pattern):
            hit = True
    return hit


@dataclass(frozen=True, slots=True)
class SuitePlan:
    """A suite and what the step loop needs of its capabilities, read once."""

    suite: tuple[Detector, ...]
    kinds: list[str]
    band_index: int
    """The detector whose expected value and band describe the signal (`describes_band`)."""
    rhythm: int
    """The detector that describes each series' rhythm (`describes_rhythm`), or -1."""
    rarity: int
    """The detector that weighs the others' p (novelty), or -1."""
    tests: int
    """Detectors whose p is fused (the rarity detector only weighs them)."""
    late_start: np.ndarray
    explains: np.ndarray
    """Rows (d, k): where detector d judges, detector k's verdict is set aside."""
    describers: list[int]
    """Detectors that describe the signal where they judge (they explain others)."""
    patterns: list[tuple[str, ...] | None]
    """Per detector: the signal patterns it runs on, None for every signal."""
    unexplained: list[int]
    """Detectors whose verdict no mode switch explains (`switch_explains` False)."""
    calibration: CalibrationStack
    packing: Packing

    @classmethod
    def of(cls, suite: Sequence[Detector]) -> SuitePlan:
        dets = tuple(suite)
        kinds = [d.kind for d in dets]
        weighers = [d for d, det in enumerate(dets) if det.rarity]
        if len(weighers) > 1:
            raise ValueError("a suite takes at most one rarity detector")
        banded = [d for d, det in enumerate(dets) if det.describes_band]
        rhythmic = [d for d, det in enumerate(dets) if det.describes_rhythm]
        explains = np.array(
            [
                (d, kinds.index(kind))
                for d, det in enumerate(dets)
                for kind in det.explains
                if kind in kinds
            ],
            dtype=np.intp,
        ).reshape(-1, 2)
        return cls(
            suite=dets,
            kinds=kinds,
            band_index=banded[0] if banded else 0,
            rhythm=rhythmic[0] if rhythmic else -1,
            rarity=weighers[0] if weighers else -1,
            tests=len(dets) - len(weighers),
            late_start=np.array([bool(det.late_start) for det in dets]),
            explains=explains,
            describers=[d for d, det in enumerate(dets) if det.explains],
            patterns=[None if tuple(det.signals) == ("*",) else tuple(det.signals) for det in dets],
            unexplained=[d for d, det in enumerate(dets) if not det.switch_explains],
            calibration=CalibrationStack(tuple(d.calibration for d in dets)),
            packing=packing_of(dets),
        )


NAME_CACHE = 20_000
"""Signal names whose match is kept per detector (bounded: names come and go with sources)."""


class Selection:
    """Which series each detector runs on, from its `signals` patterns (cached per name)."""

    __slots__ = ("_cache", "limited", "patterns")

    def __init__(self, patterns: Sequence[tuple[str, ...] | None]) -> None:
        self.patterns = list(patterns)
        self._cache: list[dict[str, bool] | None] = [None if p is None else {} for p in patterns]
        self.limited = any(p is not None for p in patterns)
        """Whether some detector runs on some signals only."""

    def runs_on(self, names: Sequence[str]) -> list[np.ndarray | None]:
        """Per detector, which of the series `names` it runs on (None: all)."""
        if not self.limited:
            return [None] * len(self.patterns)
        return [self._mask(d, names) for d in range(len(self.patterns))]

    def _mask(self, d: int, names: Sequence[str]) -> np.ndarray | None:
        cache, patterns = self._cache[d], self.patterns[d]
        if cache is None or patterns is None:
            return None
        out = np.empty(len(names), dtype=bool)
        for i, name in enumerate(names):
            hit = cache.get(name)
            if hit is None:
                if len(cache) >= NAME_CACHE:
                    cache.clear()
                hit = cache[name] = signal_matches(name, patterns)
            out[i] = hit
        return out


@dataclass(slots=True)
class StepOutputs:
    """What the step loop found, per step: per detector and series, per series, per source."""

    p_det: np.ndarray
    """(steps, detectors, series): each detector's calibrated tail probability."""
    p_sig: np.ndarray
    """(steps, series): each signal's fused p."""
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    p_rec: np.ndarray
    """(steps, sources): each record's p (the autoencoder's verdict fused in later)."""
    p_alert: np.ndarray
    """(steps, sources): p as alerts see it (`ScoringConfig.known_factor`)."""
    warming: np.ndarray
    new: np.ndarray
    """(steps, series): the value lies where the signal has never been."""
    level: np.ndarray
    """Per series: the per-test level of its source."""
    periods: list[Period | None]
    """Per series: its rhythm when the batch began (None: none, or no detector describes one)."""
    period_moves: dict[int, list[tuple[int, Period | None]]]
    """Series -> (step, rhythm from that step's record on), where the batch changed it."""


class RhythmWatch:
    """Each series' rhythm as the batch goes: read once when it begins, then re-read only for
    the series whose `rhythm_fields` a step changed, so that a score message carries the rhythm
    known at its record, not at its batch's end (a few array comparisons a step)."""

    __slots__ = ("det", "fields", "moves", "seen", "start")

    def __init__(self, det: Rhythm, st: State) -> None:
        self.det = det
        self.fields = det.rhythm_fields
        self.start = det.rhythm(st)
        self.seen = [st[f].copy() for f in self.fields]
        self.moves: dict[int, list[tuple[int, Period | None]]] = {}

    def step(self, t: int, st: State) -> None:
        """After step `t` learnt: note the rhythm of the series whose rhythm fields moved."""
        moved = st[self.fields[0]] != self.seen[0]
        for f, old in zip(self.fields[1:], self.seen[1:], strict=True):
            moved |= st[f] != old
        if not moved.any():
            return
        rows = np.flatnonzero(moved)
        now = self.det.rhythm({f: st[f][rows] for f in self.fields})
        for r, period in zip(rows.tolist(), now, strict=True):
            self.moves.setdefault(r, []).append((t, period))
        for f, old in zip(self.fields, self.seen, strict=True):
            old[rows] = st[f][rows]


def _only(raw: Raw, mask: np.ndarray) -> Raw:
    """A detector's verdict kept only on the series it runs on."""
    learn = None if raw.learn_stat is None else np.where(mask, raw.learn_stat, np.nan)
    return Raw(np.where(mask, raw.stat, np.nan), np.where(mask, raw.expected, np.nan), learn)


def run_steps(
    plan: SuitePlan,
    cfg: ScoringConfig,
    layout: Layout,
    det_states: list[State],
    cal_states: list[State],
    runs_on: Sequence[np.ndarray | None] = (),
    quiet: np.ndarray | None = None,
) -> StepOutputs:
    """Score and learn the batch's steps in order; the states are updated in place. Where
    `quiet` (steps x sources) holds, the detectors learn but their calibrations do not (a
    switch between operating modes, `detectors.modes.quiet_steps`)."""
    values, times, learnable = layout.values, layout.times, layout.learnable
    sizes, offsets = layout.sizes, layout.offsets
    suite = plan.suite
    steps, n_series = values.shape
    n_det = len(suite)
    sizes_arr = np.asarray(sizes)
    series_source = np.repeat(np.arange(len(sizes)), sizes_arr)
    starts = offsets[:-1]
    level = per_test_level(cfg.target_fap, plan.tests * sizes_arr[series_source])
    band_index = plan.band_index
    band_det = suite[band_index]
    out = StepOutputs(
        p_det=np.ones((steps, n_det, n_series)),
        p_sig=np.ones((steps, n_series)),
        expected=np.full((steps, n_series), np.nan),
        lower=np.full((steps, n_series), np.nan),
        upper=np.full((steps, n_series), np.nan),
        p_rec=np.ones((steps, len(sizes))),
        p_alert=np.ones((steps, len(sizes))),
        warming=np.zeros((steps, len(sizes)), dtype=bool),
        new=np.zeros((steps, n_series), dtype=bool),
        level=level,
        periods=[None] * n_series,
        period_moves={},
    )
    stack = plan.calibration
    cal = stack.stack(cal_states)
    late_start, explains = plan.late_start, plan.explains
    rarity = plan.rarity
    weigher = cast(Rarity, suite[rarity]) if rarity >= 0 else None
    weights = np.ones((n_series, DECADES))
    p_pre = np.ones(n_series)
    describers = plan.describers
    masks = np.ones((n_det, n_series), dtype=bool)
    for d, mask in enumerate(runs_on):
        if mask is not None:
            masks[d] = mask
    verdict = np.empty((n_det, n_series), dtype=bool)
    warmup = float(cfg.warmup)
    rhythm = plan.rhythm
    watch = None if rhythm < 0 else RhythmWatch(cast(Rhythm, suite[rhythm]), det_states[rhythm])
    for t in range(steps):
        x = values[t]
        ts = times[t][series_source]
        present = ~np.isnan(x)
        raws = [det.raw(det_states[d], x, ts) for d, det in enumerate(suite)]
        for d, mask in enumerate(runs_on):
            if mask is not None:
                raws[d] = _only(raws[d], mask)
        stats = np.stack([raw.stat for raw in raws])
        # every detector calibrated at once, then fused per signal and per record (a late
        # starter gives no verdict until its own warm-up ends, the others hold the source's
        # warm-up until theirs does; a rhythm explains what level detectors see)
        p_det = stack.tail_probability(cal, stats, out=out.p_det[t])
        if weigher is not None:
            weigher.weights(det_states[rarity], out=weights)
            out.new[t] = stats[rarity] == 1.0
        fuse_step(
            stats,
            p_det,
            cal["n"],
            warmup,
            late_start,
            explains,
            rarity,
            weights,
            cfg.known_factor,
            present,
            starts,
            verdict,
            p_pre,
            out.p_sig[t],
            out.p_rec[t],
            out.p_alert[t],
            out.warming[t],
        )
        r_star = stack.quantile(cal, band_index, level)
        lower, upper = band_det.band(det_states[band_index], r_star, ts)
        expected = raws[band_index].expected
        unknown = cal["n"][band_index] < 1  # nothing calibrated yet: no band (null in messages)
        if unknown.any():
            expected = np.where(unknown, np.nan, expected)
            lower = np.where(unknown, np.nan, lower)
            upper = np.where(unknown, np.nan, upper)
        for d in describers:  # where a rhythm judges, it also describes the signal
            if verdict[d].any():
                det = suite[d]
                r_d = stack.quantile(cal, d, level)
                low_d, up_d = det.band(det_states[d], r_d, ts)
                expected = np.where(verdict[d], raws[d].expected, expected)
                lower = np.where(verdict[d], low_d, lower)
                upper = np.where(verdict[d], up_d, upper)
        out.expected[t] = expected
        out.lower[t] = lower
        out.upper[t] = upper

        learn = present & learnable[t][series_source]
        if cfg.learn_gate:
            anomalous = (out.p_rec[t] <= cfg.target_fap) & ~out.warming[t]
            learn &= ~anomalous[series_source]
        if weigher is not None:  # what it said of each value, under the value's p
            weigher.observe(det_states[rarity], stats[rarity], p_pre, learn)
        for d, det in enumerate(suite):
            mask = runs_on[d] if d < len(runs_on) else None
            det.learn(det_states[d], x, ts, learn if mask is None else learn & mask)
        cal_learn = learn if quiet is None else learn & ~quiet[t][series_source]
        stack.learn(cal, np.stack([raw.calibration_input for raw in raws]), cal_learn & masks)
        if watch is not None:
            watch.step(t, det_states[rhythm])
    stack.unstack(cal, cal_states)
    if watch is not None:
        out.periods, out.period_moves = watch.start, watch.moves
    return out
