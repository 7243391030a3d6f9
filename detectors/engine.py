"""Scoring a micro-batch of records across sources: one time step at a time, all series at once.

The flow, top to bottom: group the batch by source and drop replays (records at or below the
offset a source's state has applied) -> lay the values out as a (steps x series) matrix, series
being every signal of every source in the batch -> per step, every detector's raw statistic,
calibrated to a tail probability, fused per signal and per record -> learning (unless the record
is late, or anomalous with the learning gate on) -> per-record results.

Each series only ever sees its own values in order, so the scores do not depend on how records
were cut into batches: the stream, a replay after a crash and offline scoring agree exactly.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from hashlib import blake2b
from typing import Any, cast

import numpy as np

from detectors import state as st_ops
from detectors.autoencoder import OnnxAutoencoder, WindowState, impute, score_sources
from detectors.calibration import CalibrationStack
from detectors.fusion import DECADES, fuse_step, per_test_level, sidak
from detectors.models import ModelBook
from detectors.protocol import Detector, Rarity, Raw
from detectors.records import Record
from detectors.registry import BAND_DETECTOR, default_suite
from detectors.results import Columns, Scored, SignalRows
from detectors.seasonal import Seasonal, describe
from detectors.source_state import SourceState, packing_of


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    """The knobs of scoring; the threshold follows from `target_fap` alone."""

    target_fap: float = 1e-3
    warmup: int = 200
    learn_gate: bool = False
    realert_after: int = 100
    """An anomalous record raises an event (an alert) when its p is `ESCALATION` times smaller
    than the source's last escalated record's, or that was more than this many records ago."""
    known_factor: float = 10.0
    """Alerts ask this many times more evidence of a record whose values all lie where their
    signals have been before (see `detectors.novelty`): recurring behaviour pages nobody at
    the first odd value. The record's score and `is_anomaly` are not affected."""

    @property
    def threshold(self) -> float:
        return 1.0 - self.target_fap


@dataclass(slots=True)
class _Group:
    source: str
    state: SourceState
    rows: list[int] = field(default_factory=list)
    taken: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Partition -> (offset, index) of the last record taken in this batch."""


@dataclass(slots=True)
class _Verdicts:
    """The models' verdicts on a batch's records, per (step, group), converted to lists once."""

    labels: list[str | None]
    """Per group: the label of the model that serves it."""
    columns: list[dict[str, int] | None]
    """Per group: the model's column of each of its signals."""
    p: list[list[float]]
    """Per group, per step: the model's p where it judged, NaN elsewhere."""
    row: list[list[int]]
    """Per group, per step: the record's row in its model's grid (-1: late, not windowed)."""
    member: list[int]
    """Per group: its column in its model's grid."""
    shares: list[list[list[list[float]]]]
    """Per group: its model's grid of error shares, (rows, members, k), as lists."""
    recon: list[list[list[list[float]]]]
    """Per group: its model's grid of reconstructions, as lists."""


ESCALATION = 3.0
"""An alert within `realert_after` records needs a p this many times smaller (half a severity
step; NAB measured 10x at -0.6 / -1.2 / -0.9)."""
P_FLOOR = 1e-15
"""Below this, p is beyond what any calibration knows (and 1 - p rounds to 1)."""


def _finite_or_none(values: np.ndarray) -> list[list[float | None]]:
    """Rows of floats with NaN and infinities as None, converted for a whole batch at once."""
    rows = values.astype(object)
    rows[~np.isfinite(values)] = None
    out: list[list[float | None]] = rows.tolist()
    return out


def _absent(tested: Sequence[str], sent: Sequence[str]) -> list[str]:
    present = set(sent)
    return [name for name in tested if name not in present]


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


def _only(raw: Raw, mask: np.ndarray) -> Raw:
    """A detector's verdict kept only on the series it runs on."""
    learn = None if raw.learn_stat is None else np.where(mask, raw.learn_stat, np.nan)
    return Raw(np.where(mask, raw.stat, np.nan), np.where(mask, raw.expected, np.nan), learn)


def episode_id(source: str, ts_text: str) -> str:
    """Deterministic id of the episode that opened at `ts_text`."""
    return blake2b(f"{source}|{ts_text}".encode(), digest_size=10).hexdigest()


class Scorer:
    """Scores micro-batches against per-source states (which it updates in place)."""

    def __init__(
        self,
        config: ScoringConfig,
        suite: Sequence[Detector] | None = None,
        models: ModelBook | None = None,
    ) -> None:
        self.config = config
        self.models = models
        self.suite = list(suite) if suite is not None else default_suite()
        kinds = [d.kind for d in self.suite]
        self.band_index = kinds.index(BAND_DETECTOR) if BAND_DETECTOR in kinds else 0
        self.kinds = kinds
        self.seasonal = kinds.index(Seasonal.kind) if Seasonal.kind in kinds else None
        weighers = [d for d, det in enumerate(self.suite) if getattr(det, "rarity", False)]
        if len(weighers) > 1:
            raise ValueError("a suite takes at most one rarity detector")
        self.rarity = weighers[0] if weighers else -1
        """The detector that weighs the others' p (novelty), or -1."""
        self.tests = len(self.suite) - len(weighers)
        """Detectors whose p is fused (the rarity detector only weighs them)."""
        self.calibration = CalibrationStack(tuple(d.calibration for d in self.suite))
        self.packing = packing_of(self.suite)
        self._applies: list[dict[str, bool] | None] = [
            None if tuple(getattr(d, "signals", ("*",))) == ("*",) else {} for d in self.suite
        ]
        """Per detector limited to some signals: signal name -> whether it runs (a cache)."""
        self._keys: dict[str, list[str]] = {}

    def _runs_on(self, d: int, names: Sequence[str]) -> np.ndarray | None:
        """Which series detector `d` runs on (None: all), from its `signals` patterns."""
        cache = self._applies[d]
        if cache is None:
            return None
        patterns: tuple[str, ...] = getattr(self.suite[d], "signals", ("*",))
        out = np.empty(len(names), dtype=bool)
        for i, name in enumerate(names):
            hit = cache.get(name)
            if hit is None:
                hit = cache[name] = signal_matches(name, patterns)
            out[i] = hit
        return out

    def prepare(self) -> None:
        """Compile the scoring loops now (or load them from numba's on-disk cache), so that no
        micro-batch waits for them: seconds on a fresh install.

        numba compiles a loop per array layout: a batch of one series hands the detectors
        contiguous rows, a batch of more series strided views, so both are scored here."""
        scorer = Scorer(self.config, self.suite)
        one = [Record("prepare", 0.0, "", {"x": 0.0})]
        more = [
            Record("prepare-a", 0.0, "", {"x": 0.0, "y": 0.0}),
            Record("prepare-b", 0.0, "", {"x": 0.0}),
        ]
        for batch in (one, more):
            scorer.score_batch(batch, {})
        for n in (1, 3):  # bands of detectors that describe a signal only once warm
            states = self.packing.views(*self.packing.new(n))
            for d, det in enumerate(self.suite):
                det.band(states[d], np.ones(n), np.zeros(n))

    def new_source(self) -> SourceState:
        return SourceState.new(self.suite)

    def score_batch(
        self, records: Sequence[Record], states: MutableMapping[str, SourceState]
    ) -> list[Scored | None]:
        """Score `records` in order; `None` marks a replayed record that was already applied."""
        results: list[Scored | None] = [None] * len(records)
        groups = self._group(records, states)
        if not groups:
            return results
        sizes = [len(g.state.signals) for g in groups]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
        steps = max(len(g.rows) for g in groups)
        n_series = int(offsets[-1])
        values = np.full((steps, n_series), np.nan)
        times = np.zeros((steps, len(groups)))
        learnable = np.zeros((steps, len(groups)), dtype=bool)
        late = np.zeros((steps, len(groups)), dtype=bool)
        for j, group in enumerate(groups):
            self._layout(group, records, values, times, learnable, late, j, int(offsets[j]))

        # every source's numbers in two blocks: the detectors see views into them
        packing = self.packing
        if any(g.state.packing is not packing for g in groups):
            raise ValueError("a source state was built for another suite")
        scalars = np.concatenate([g.state.scalars for g in groups], axis=1)
        wide = np.concatenate([g.state.wide for g in groups], axis=0)
        views = packing.views(scalars, wide)
        slots = [dict(view) for view in views]
        det_states, cal_states = slots[: len(self.suite)], slots[len(self.suite) :]
        runs_on: list[np.ndarray | None] = [None] * len(self.suite)
        if any(cache is not None for cache in self._applies):  # a detector on some signals only
            names = [name for g in groups for name in g.state.signals]
            runs_on = [self._runs_on(d, names) for d in range(len(self.suite))]
        out = self._run(values, times, learnable, sizes, offsets, det_states, cal_states, runs_on)
        packing.write_back(slots, views)
        for j, g in enumerate(groups):  # copies: a view would keep the whole batch alive
            a, b = int(offsets[j]), int(offsets[j + 1])
            g.state.scalars = scalars[:, a:b].copy()
            g.state.wide = wide[a:b].copy()

        verdicts = self._autoencode(groups, values, out, late, offsets)
        table = self._table(groups, out, det_states)
        columns = {  # per group, per step: each converted once for the whole batch
            "p": out["p_rec"].T.tolist(),
            "p_alert": out["p_alert"].T.tolist(),
            "warming": out["warming"].T.tolist(),
            "late": late.T.tolist(),
        }
        for j, group in enumerate(groups):
            self._collect(group, records, columns, j, int(offsets[j]), results, table, verdicts)
        return results

    def _table(
        self, groups: Sequence[_Group], out: dict[str, np.ndarray], det_states: list[st_ops.State]
    ) -> Columns:
        """The batch's per-signal results as lists, each array converted once."""
        p_det = out["p_det"]
        best_p = p_det.min(axis=1)
        # argmin over the detector axis, first minimum wins (np.argmin on a middle axis was 20
        # times slower than these few whole-array operations)
        best = np.zeros(best_p.shape, dtype=np.intp)
        low = p_det[:, 0]
        for d in range(1, p_det.shape[1]):
            better = p_det[:, d] < low
            best[better] = d
            low = np.minimum(low, p_det[:, d])
        fired_mask = p_det < out["level"]
        fired_any: list[list[bool]] = fired_mask.any(axis=1).tolist()  # type: ignore[assignment]
        n_series = p_det.shape[2]
        return Columns(
            kinds=self.kinds,
            keys=[self._detector_keys(name) for g in groups for name in g.state.signals],
            p=out["p_sig"].tolist(),
            best=best.tolist(),
            best_p=best_p.tolist(),
            fired_any=fired_any,
            fired_mask=fired_mask,
            expected=_finite_or_none(out["expected"]),
            lower=_finite_or_none(out["lower"]),
            upper=_finite_or_none(out["upper"]),
            periods=[None] * n_series
            if self.seasonal is None
            else describe(det_states[self.seasonal]),
            model_col=[-1] * n_series,
            new=out["new"].tolist(),
        )

    def _autoencode(
        self,
        groups: Sequence[_Group],
        values: np.ndarray,
        out: dict[str, np.ndarray],
        late: np.ndarray,
        offsets: np.ndarray,
    ) -> _Verdicts | None:
        """The autoencoder's verdict on each group's in-order records, one inference per model,
        fused into `out["p_rec"]` as one more Šidák test.

        Missing values are imputed from the univariate detectors' expected values; late records
        are not windowed (their place in the sequence has passed).
        """
        if self.models is None:
            return None
        served: dict[str, tuple[OnnxAutoencoder, list[int]]] = {}
        for j, group in enumerate(groups):
            model = self.models.for_source(group.source)
            state = group.state
            if model is None:
                state.window = None
                continue
            state.window = (
                WindowState.new(model) if state.window is None else state.window.adopt(model)
            )
            served.setdefault(model.label, (model, []))[1].append(j)
        if not served:
            return None
        n_steps, n_groups = late.shape
        p_model = np.full((n_steps, n_groups), np.nan)
        grid_row = np.full((n_steps, n_groups), -1, dtype=np.intp)
        none: list[list[list[float]]] = []
        verdicts = _Verdicts(
            labels=[None] * n_groups,
            columns=[None] * n_groups,
            p=[],
            row=[],
            member=[0] * n_groups,
            shares=[none] * n_groups,
            recon=[none] * n_groups,
        )
        for model, members in served.values():
            spec = model.spec
            k = len(spec.signals)
            # The batch's (steps x series) matrix already holds the values: one gather takes
            # every member source's columns in the model's order (-1: never sent, missing).
            cols = np.full((len(members), k), -1, dtype=np.intp)
            for a, j in enumerate(members):
                index, base = groups[j].state.index, int(offsets[j])
                for c, name in enumerate(spec.signals):
                    col = index.get(name)
                    if col is not None:
                        cols[a, c] = base + col
            flat = cols.ravel()
            known = flat >= 0
            taken = np.full((len(values), flat.size), np.nan)
            taken[:, known] = values[:, flat[known]]
            expected = np.full_like(taken, np.nan)
            expected[:, known] = out["expected"][:, flat[known]]
            block = taken.reshape(-1, len(members), k)
            guess = expected.reshape(-1, len(members), k)
            counts = np.array([len(groups[j].rows) for j in members])
            taken_rows = np.arange(n_steps)[:, None] < counts[None, :]  # (steps, members)
            gaps = np.isnan(block)
            holed: list[bool] = (gaps.any(axis=2) & taken_rows).any(axis=0).tolist()  # type: ignore[assignment]
            any_late: list[bool] = late[:, members].any(axis=0).tolist()  # type: ignore[assignment]
            all_rows, all_gaps = [], []
            for a, j in enumerate(members):
                n = int(counts[a])
                if any_late[a]:  # late records are not windowed: the in-order ones are
                    steps = np.flatnonzero(~late[:n, j])
                    rows, fallback, holes = block[steps, a], guess[steps, a], gaps[steps, a]
                    grid_row[steps, j] = np.arange(len(steps))
                else:
                    rows, fallback, holes = block[:n, a], guess[:n, a], gaps[:n, a]
                    grid_row[:n, j] = np.arange(n)
                if holed[a]:
                    window = groups[j].state.window
                    last = window.rows[-1] if window is not None and len(window.rows) else None
                    impute(
                        rows, fallback, np.full(k, np.nan) if last is None else last, spec.center
                    )
                all_rows.append(rows)
                all_gaps.append(holes)
            states = [groups[j].state.window for j in members]
            grid = score_sources(model, [s for s in states if s is not None], all_rows, all_gaps)
            # each member's records: their grid rows, and the model's p where it judged
            rows_of = grid_row[:, members]
            taken_at = rows_of >= 0
            judged_p = np.where(grid.judged, grid.p, np.nan)
            picked = judged_p[np.maximum(rows_of, 0), np.arange(len(members))[None, :]]
            p_model[:, members] = np.where(taken_at, picked, np.nan)
            shares, recon = grid.share.tolist(), grid.expected.tolist()
            column = {name: c for c, name in enumerate(spec.signals)}
            for a, j in enumerate(members):
                verdicts.labels[j], verdicts.columns[j] = model.label, column
                verdicts.member[j], verdicts.shares[j], verdicts.recon[j] = a, shares, recon
        # One more test per record: Šidák over the suite's and the model's p, for the whole
        # batch at once (per record, numpy's scalar overhead dominated).
        has = np.isfinite(p_model)
        verdict = np.where(has, p_model, 1.0)
        for name in ("p_rec", "p_alert"):  # the model has no notion of known values
            p = out[name]
            out[name] = np.where(has, sidak(np.minimum(p, verdict), 2), p)
        verdicts.p = p_model.T.tolist()
        verdicts.row = grid_row.T.tolist()
        return verdicts

    def _group(
        self, records: Sequence[Record], states: MutableMapping[str, SourceState]
    ) -> list[_Group]:
        by_source: dict[str, _Group] = {}
        for i, rec in enumerate(records):
            group = by_source.get(rec.source)
            if group is None:
                state = states.get(rec.source)
                if state is None:
                    state = states[rec.source] = self.new_source()
                group = by_source[rec.source] = _Group(rec.source, state)
            origin = rec.origin
            if origin is not None:
                if origin.offset <= group.state.applied.get(origin.partition, -1):
                    continue  # replayed: its results were acknowledged before the state was saved
                position = (origin.offset, origin.item)
                last = group.taken.get(origin.partition)
                if last is not None and position <= last:
                    continue  # delivered twice within this batch
                group.taken[origin.partition] = position
            group.rows.append(i)
        groups = [g for g in by_source.values() if g.rows]
        for g in groups:
            names: dict[str, None] = {}
            for i in g.rows:
                names.update(dict.fromkeys(records[i].signals))
            g.state.add_signals(list(names), self.suite)
        return groups

    def _layout(
        self,
        group: _Group,
        records: Sequence[Record],
        values: np.ndarray,
        times: np.ndarray,
        learnable: np.ndarray,
        late: np.ndarray,
        j: int,
        base: int,
    ) -> None:
        index = group.state.index
        last_ts = group.state.last_ts
        for t, i in enumerate(group.rows):
            rec = records[i]
            row = values[t]
            for name, value in rec.signals.items():
                if value is not None:
                    row[base + index[name]] = value
            times[t, j] = rec.ts
            is_late = rec.ts <= last_ts
            late[t, j] = is_late
            learnable[t, j] = not is_late
            if not is_late:
                last_ts = rec.ts

    def _run(
        self,
        values: np.ndarray,
        times: np.ndarray,
        learnable: np.ndarray,
        sizes: Sequence[int],
        offsets: np.ndarray,
        det_states: list[st_ops.State],
        cal_states: list[st_ops.State],
        runs_on: Sequence[np.ndarray | None] = (),
    ) -> dict[str, np.ndarray]:
        cfg = self.config
        steps, n_series = values.shape
        n_det = len(self.suite)
        sizes_arr = np.asarray(sizes)
        series_source = np.repeat(np.arange(len(sizes)), sizes_arr)
        starts = offsets[:-1]
        level = per_test_level(cfg.target_fap, self.tests * sizes_arr[series_source])
        band_det = self.suite[self.band_index]
        kinds = self.kinds
        out = {
            "p_det": np.ones((steps, n_det, n_series)),
            "p_sig": np.ones((steps, n_series)),
            "expected": np.full((steps, n_series), np.nan),
            "lower": np.full((steps, n_series), np.nan),
            "upper": np.full((steps, n_series), np.nan),
            "p_rec": np.ones((steps, len(sizes))),
            "p_alert": np.ones((steps, len(sizes))),
            "warming": np.zeros((steps, len(sizes)), dtype=bool),
            "new": np.zeros((steps, n_series), dtype=bool),
            "level": level,
        }
        stack = self.calibration
        cal = stack.stack(cal_states)
        late_start = np.array([bool(getattr(det, "late_start", False)) for det in self.suite])
        explains = np.array(
            [
                (d, kinds.index(kind))
                for d, det in enumerate(self.suite)
                for kind in getattr(det, "explains", ())
                if kind in kinds
            ],
            dtype=np.intp,
        ).reshape(-1, 2)
        rarity = self.rarity
        weigher = cast(Rarity, self.suite[rarity]) if rarity >= 0 else None
        weights = np.ones((n_series, DECADES))
        p_pre = np.ones(n_series)
        describers = [d for d, det in enumerate(self.suite) if getattr(det, "explains", ())]
        masks = np.ones((n_det, n_series), dtype=bool)
        for d, mask in enumerate(runs_on):
            if mask is not None:
                masks[d] = mask
        verdict = np.empty((n_det, n_series), dtype=bool)
        warmup = float(cfg.warmup)
        for t in range(steps):
            x = values[t]
            ts = times[t][series_source]
            present = ~np.isnan(x)
            raws = [det.raw(det_states[d], x, ts) for d, det in enumerate(self.suite)]
            for d, mask in enumerate(runs_on):
                if mask is not None:
                    raws[d] = _only(raws[d], mask)
            stats = np.stack([raw.stat for raw in raws])
            # every detector calibrated at once, then fused per signal and per record (a late
            # starter gives no verdict until its own warm-up ends, the others hold the source's
            # warm-up until theirs does; a rhythm explains what level detectors see)
            p_det = stack.tail_probability(cal, stats, out=out["p_det"][t])
            if weigher is not None:
                weigher.weights(det_states[rarity], out=weights)
                out["new"][t] = stats[rarity] == 1.0
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
                out["p_sig"][t],
                out["p_rec"][t],
                out["p_alert"][t],
                out["warming"][t],
            )
            r_star = stack.quantile(cal, self.band_index, level)
            lower, upper = band_det.band(det_states[self.band_index], r_star, ts)
            expected = raws[self.band_index].expected
            for d in describers:  # where a rhythm judges, it also describes the signal
                if verdict[d].any():
                    det = self.suite[d]
                    r_d = stack.quantile(cal, d, level)
                    low_d, up_d = det.band(det_states[d], r_d, ts)
                    expected = np.where(verdict[d], raws[d].expected, expected)
                    lower = np.where(verdict[d], low_d, lower)
                    upper = np.where(verdict[d], up_d, upper)
            out["expected"][t] = expected
            out["lower"][t] = lower
            out["upper"][t] = upper

            learn = present & learnable[t][series_source]
            if cfg.learn_gate:
                anomalous = (out["p_rec"][t] <= cfg.target_fap) & ~out["warming"][t]
                learn &= ~anomalous[series_source]
            if weigher is not None:  # what it said of each value, under the value's p
                weigher.observe(det_states[rarity], stats[rarity], p_pre, learn)
            for d, det in enumerate(self.suite):
                mask = runs_on[d] if d < len(runs_on) else None
                det.learn(det_states[d], x, ts, learn if mask is None else learn & mask)
            stack.learn(cal, np.stack([raw.calibration_input for raw in raws]), learn & masks)
        stack.unstack(cal, cal_states)
        return out

    def _collect(
        self,
        group: _Group,
        records: Sequence[Record],
        columns: dict[str, list[list[Any]]],
        j: int,
        base: int,
        results: list[Scored | None],
        table: Columns,
        verdicts: _Verdicts | None,
    ) -> None:
        cfg = self.config
        state = group.state
        p_rec: list[float] = columns["p"][j]
        p_alert: list[float] = columns["p_alert"][j]
        warming: list[bool] = columns["warming"][j]
        is_late: list[bool] = columns["late"][j]
        index = state.index
        model_label = None if verdicts is None else verdicts.labels[j]
        tested = list(state.signals)
        model_p: list[float] = []
        if verdicts is not None and model_label is not None:
            for name, c in (verdicts.columns[j] or {}).items():
                if name in index:
                    table.model_col[base + index[name]] = c
                else:
                    tested.append(name)  # the model needs it, the source never sent it
            model_p, grid_row, member = verdicts.p[j], verdicts.row[j], verdicts.member[j]
            shares, recon = verdicts.shares[j], verdicts.recon[j]
        positions: dict[tuple[str, ...], list[int]] = {}
        """Signal names in a record's order -> their series (records of a source look alike)."""
        for t, i in enumerate(group.rows):
            rec = records[i]
            values: list[float] = list(rec.signals.values())  # type: ignore[arg-type]
            if None in values:  # missing values: not scored, listed as missing
                sent = [name for name, v in rec.signals.items() if v is not None]
                values = [v for v in values if v is not None]
            else:
                sent = list(rec.signals)
            key = tuple(sent)
            cols = positions.get(key)
            if cols is None:
                cols = positions[key] = [base + index[name] for name in sent]
            at_t = None
            if model_p and model_p[t] == model_p[t]:  # the model judged this record (not NaN)
                r = grid_row[t]
                at_t = (model_p[t], shares[r][member], recon[r][member])
            p = p_rec[t]
            anomalous = p <= cfg.target_fap and not warming[t] and bool(sent)
            scored = Scored(
                record=rec,
                score=1.0 - p,
                p=p,
                is_anomaly=anomalous,
                alert_p=p_alert[t],
                alertable=anomalous and p_alert[t] <= cfg.target_fap,
                warming_up=warming[t],
                late=is_late[t],
                missing=[] if len(sent) == len(tested) else _absent(tested, sent),
                rows=SignalRows(table, t, sent, values, cols, at_t),
                model=model_label,
                model_p=None if at_t is None else at_t[0],
            )
            self._track_episode(state, scored)
            if not scored.warming_up:
                scored.escalated = self._escalate(state, p_alert[t])
            results[i] = scored
            state.records += 1
            if not is_late[t]:
                state.last_ts = rec.ts
            if rec.origin is not None:
                part = rec.origin.partition
                state.applied[part] = max(state.applied.get(part, -1), rec.origin.offset)

    def _detector_keys(self, name: str) -> list[str]:
        """`signal/kind` for each detector kind: the score message's `detectors` keys."""
        keys = self._keys.get(name)
        if keys is None:
            keys = self._keys[name] = [f"{name}/{kind}" for kind in self.kinds]
        return keys

    def _escalate(self, state: SourceState, p: float) -> bool:
        """Whether `p` beats the last escalated record's, which counts for `realert_after`.

        Threshold-free on purpose: the same rule gives the NAB runner its alert score.
        """
        state.alert_age += 1
        p = max(p, P_FLOOR)
        if p * ESCALATION < state.alert_p or state.alert_age > self.config.realert_after:
            state.alert_p, state.alert_age = p, 0
            return True
        return False

    @staticmethod
    def _track_episode(state: SourceState, scored: Scored) -> None:
        """Consecutive anomalous records of a source form one episode; a normal one closes it."""
        if not scored.is_anomaly:
            state.episode = None
            return
        rec = scored.record
        if state.episode is None:
            state.episode = {
                "id": episode_id(rec.source, rec.ts_text),
                "start": rec.ts_text,
                "n": 0,
            }
        state.episode = {**state.episode, "n": state.episode["n"] + 1}
        scored.episode = dict(state.episode)
