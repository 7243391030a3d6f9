"""Evaluation metrics for row-labelled anomaly detection, in plain numpy.

Kept free of TensorFlow, sklearn and pandas so the evaluation path (and CI) can score results
without the training stack. Definitions follow the SKAB benchmark so our numbers are comparable
with its leaderboard: F1 = TP / (TP + (FP + FN) / 2), FAR and MAR as fractions. `event_report`
judges the anomaly events instead of rows: pages are what an operator pays for and acts on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "Confusion",
    "confusion",
    "event_recall",
    "event_report",
    "pr_auc",
    "report",
    "segments",
]


def _ratio(num: int, den: int) -> float:
    """0.0 instead of a ZeroDivisionError: an empty class is not an error on a single file."""
    return num / den if den else 0.0


@dataclass(frozen=True)
class Confusion:
    """Row-level confusion counts; addable so per-file results pool into one benchmark score."""

    tp: int
    fp: int
    fn: int
    tn: int

    def __add__(self, other: Confusion) -> Confusion:
        if not isinstance(other, Confusion):
            return NotImplemented
        return Confusion(
            tp=self.tp + other.tp,
            fp=self.fp + other.fp,
            fn=self.fn + other.fn,
            tn=self.tn + other.tn,
        )

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 0.0 when nothing was predicted."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 0.0 when there are no anomalies."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """SKAB's F1: TP / (TP + (FP + FN) / 2); 0.0 when undefined."""
        den = self.tp + (self.fp + self.fn) / 2
        return self.tp / den if den else 0.0

    @property
    def far(self) -> float:
        """False alarm rate FP / (FP + TN), a fraction: what operators pay in noise."""
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def mar(self) -> float:
        """Missing alarm rate FN / (FN + TP), a fraction: the anomalies we let through."""
        return _ratio(self.fn, self.fn + self.tp)


def _as_1d(name: str, values: npt.ArrayLike) -> npt.NDArray[np.generic]:
    """Reject 2-D input early: a silently flattened (rows, signals) array gives wrong counts."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def _as_bool(name: str, values: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    return _as_1d(name, values).astype(bool)


def _same_length(
    a_name: str, a: npt.NDArray[np.generic], b_name: str, b: npt.NDArray[np.generic]
) -> None:
    """Misaligned arrays mean a windowing bug upstream; fail loudly instead of truncating."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{a_name} and {b_name} must have the same length, got {a.shape[0]} and {b.shape[0]}"
        )


def confusion(labels: npt.ArrayLike, predicted: npt.ArrayLike) -> Confusion:
    """Count TP/FP/FN/TN per row, the unit SKAB scores on."""
    y = _as_bool("labels", labels)
    p = _as_bool("predicted", predicted)
    _same_length("labels", y, "predicted", p)
    return Confusion(
        tp=int(np.count_nonzero(y & p)),
        fp=int(np.count_nonzero(~y & p)),
        fn=int(np.count_nonzero(y & ~p)),
        tn=int(np.count_nonzero(~y & ~p)),
    )


def segments(labels: npt.ArrayLike) -> list[tuple[int, int]]:
    """Runs of consecutive 1s as (start, end_inclusive): one entry per labelled incident."""
    y = _as_bool("labels", labels).astype(np.int8)
    edges = np.diff(np.concatenate(([0], y, [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def event_recall(labels: npt.ArrayLike, predicted: npt.ArrayLike) -> float:
    """Share of labelled incidents with at least one alarm inside them.

    Row recall punishes a detector that fires once per incident; operators only need one alarm.
    Returns 0.0 (not NaN) when there are no incidents, so results stay JSON-safe and summable.
    """
    y = _as_bool("labels", labels)
    p = _as_bool("predicted", predicted)
    _same_length("labels", y, "predicted", p)
    segs = segments(y)
    if not segs:
        return 0.0
    hit = sum(1 for start, end in segs if p[start : end + 1].any())
    return hit / len(segs)


def pr_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Average precision, sum over thresholds of (R_n - R_{n-1}) * P_n, as sklearn computes it.

    Threshold-free, so models can be compared before a threshold is chosen. Tied scores form a
    single threshold; NaN scores (rows not scored yet) rank lowest rather than poisoning the sum.
    Returns 0.0 when there are no positive labels.
    """
    y = _as_bool("labels", labels)
    s = _as_1d("scores", scores).astype(np.float64)
    _same_length("labels", y, "scores", s)
    positives = int(np.count_nonzero(y))
    if positives == 0:
        return 0.0
    s = np.where(np.isnan(s), -np.inf, s)
    order = np.argsort(s, kind="stable")[::-1]
    s_sorted = s[order]
    y_sorted = y[order]
    # Last index of each run of equal scores; `!=` (not np.diff) so -inf ties stay together.
    last = np.concatenate((np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), [s_sorted.size - 1]))
    tps = np.cumsum(y_sorted)[last]
    predicted_pos = last + 1
    precision = tps / predicted_pos
    recall = tps / positives
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def report(
    labels: npt.ArrayLike, scores: npt.ArrayLike, predicted: npt.ArrayLike
) -> dict[str, float | int]:
    """Every metric for one run as plain Python numbers, ready for json.dumps and comparison."""
    y = _as_bool("labels", labels)
    s = _as_1d("scores", scores)
    p = _as_bool("predicted", predicted)
    _same_length("labels", y, "scores", s)
    _same_length("labels", y, "predicted", p)
    c = confusion(y, p)
    return {
        "precision": c.precision,
        "recall": c.recall,
        "f1": c.f1,
        "far": c.far,
        "mar": c.mar,
        "event_recall": event_recall(y, p),
        "pr_auc": pr_auc(y, s),
        "tp": c.tp,
        "fp": c.fp,
        "fn": c.fn,
        "tn": c.tn,
        "rows": int(y.size),
        "anomalies": int(np.count_nonzero(y)),
        "events": len(segments(y)),
    }


def _stat(values: npt.NDArray[np.float64], how: str) -> float | None:
    """Mean or median; None (JSON null) for nothing to average, never a NaN."""
    if values.size == 0:
        return None
    return float(np.mean(values) if how == "mean" else np.median(values))


def event_report(
    labels: npt.ArrayLike,
    event_rows: npt.ArrayLike,
    times: npt.ArrayLike | None = None,
    culprits_true: Sequence[str] | npt.ArrayLike | None = None,
    culprits_first: Sequence[str] | npt.ArrayLike | None = None,
    grace: int = 0,
) -> dict[str, float | int | None]:
    """Event-level figures: false pages per 10k normal rows, labelled runs caught, delay, culprit.

    `event_rows` are the rows that raised an event; an event is a true page when it lies in a
    labelled run (consecutive 1s) or within `grace` rows after its end (never reaching into the
    next run: each run's window stops where the next begins), a false page otherwise. Delay is
    from a run's first row to its first event, in rows and, with `times` (epoch seconds per
    row), in seconds. With `culprits_true` (per row, the labelled signal that broke, "" where
    none) and `culprits_first` (per event, its first signal by contribution), `culprit_share` is
    the share of caught runs with a labelled signal whose first event names it. Undefined
    ratios and averages are None (JSON null).
    """
    y = _as_bool("labels", labels)
    n = y.size
    rows = _as_1d("event_rows", np.asarray(event_rows, dtype=np.int64)).astype(np.int64)
    if grace < 0:
        raise ValueError(f"grace must be >= 0 rows, got {grace}")
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ValueError(f"event rows outside the {n} labelled rows")
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    t = None if times is None else _as_1d("times", times).astype(np.float64)
    if t is not None:
        _same_length("labels", y, "times", t)
    if (culprits_true is None) != (culprits_first is None):
        raise ValueError("give both culprits_true and culprits_first, or neither")

    runs = np.asarray(segments(y), dtype=np.int64).reshape(-1, 2)
    starts, ends = runs[:, 0], runs[:, 1]
    # each run's window: the run plus the grace, cut where the next run starts
    limit = np.append(starts[1:] - 1, n - 1)
    window = np.minimum(ends + grace, limit)
    run_of = np.searchsorted(starts, rows, side="right") - 1
    if runs.size:
        inside = (run_of >= 0) & (rows <= window[np.maximum(run_of, 0)])
    else:
        inside = np.zeros(rows.size, dtype=bool)
    true_runs, first = np.unique(run_of[inside], return_index=True)
    first_rows = rows[inside][first]
    delay_rows = (first_rows - starts[true_runs]).astype(np.float64)

    normal = int(n - np.count_nonzero(y))
    false_events = int(rows.size - np.count_nonzero(inside))
    out: dict[str, float | int | None] = {
        "events": int(rows.size),
        "true_events": int(np.count_nonzero(inside)),
        "false_events": false_events,
        "normal_rows": normal,
        "false_per_10k_normal": false_events / normal * 1e4 if normal else None,
        "grace_rows": grace,
        "runs": len(runs),
        "runs_caught": len(true_runs),
        "caught_share": len(true_runs) / len(runs) if len(runs) else None,
        "delay_rows_mean": _stat(delay_rows, "mean"),
        "delay_rows_median": _stat(delay_rows, "median"),
    }
    delay_s = np.empty(0) if t is None else t[first_rows] - t[starts[true_runs]]
    out["delay_seconds_mean"] = None if t is None else _stat(delay_s, "mean")
    out["delay_seconds_median"] = None if t is None else _stat(delay_s, "median")
    if culprits_true is not None and culprits_first is not None:
        truth = _as_1d("culprits_true", np.asarray(culprits_true, dtype=object))
        named = _as_1d("culprits_first", np.asarray(culprits_first, dtype=object))
        _same_length("labels", y, "culprits_true", truth)
        _same_length("event_rows", rows, "culprits_first", named)
        named = named[order][inside][first]
        judged = right = 0
        for run, name in zip(true_runs, named, strict=True):
            labelled = [c for c in truth[starts[run] : ends[run] + 1] if c]
            if labelled:  # the run's first labelled signal
                judged += 1
                right += int(name == labelled[0])
        out["culprit_runs"] = judged
        out["culprit_right"] = right
        out["culprit_share"] = right / judged if judged else None
    return out
