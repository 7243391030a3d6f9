"""NAB scorer: corpus-wide threshold optimisation, scoring and normalisation.

Written from the algorithm described in the shared bench README (section "1. NAB"), not from
NAB's code, so that any detector can be ranked on NAB's scoreboard without NAB's pinned pandas
stack. Pure Python + numpy. A file is reduced once to profile-independent per-row "unit" weights;
a profile only scales them, so the three profiles share one preparation, and the optimiser sweeps
every distinct score of the whole corpus with one sort and one cumulative sum.

Usage: `python -m bench.nab.scorer --detector NAME [--results DIR] [--data ROOT]`.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.datasets import bench_root

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Windows = dict[str, list[tuple[str, str]]]
Results = dict[str, tuple[list[str], FloatArray]]

PROBATION_FRACTION = 0.15
MAX_PROBATION = 750  # NAB caps the probation at 15 % of a 5000-row file
NO_DETECTION = 1.1  # the threshold NAB adds to the sweep: above every score in [0, 1]
PROFILE_NAMES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
CSV_HEADER = ("timestamp", "value", "anomaly_score", "label")


def scaled_sigmoid(x: FloatArray) -> FloatArray:
    """NAB's S(x) = 2/(1+exp(5x)) - 1, set to -1 for x > 3 (so distant FPs cost the full weight)."""
    clipped = np.minimum(x, 3.0)  # keeps exp() finite; those rows are -1 anyway
    return np.where(x > 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * clipped)) - 1.0)


MAX_TP = float(scaled_sigmoid(np.array([-1.0]))[0])  # S(-1): the left edge of a window


@dataclass(frozen=True)
class Profile:
    """One NAB cost profile; tnWeight is never used by NAB, so it is not kept."""

    name: str
    tp: float
    fp: float
    fn: float


def load_profiles(nab_root: str | Path) -> list[Profile]:
    """The three profiles of config/profiles.json, in NAB's usual order."""
    raw = json.loads((Path(nab_root) / "config" / "profiles.json").read_text())
    out = []
    for name in PROFILE_NAMES:
        cost = raw[name]["CostMatrix"]
        weights = (float(cost[k]) for k in ("tpWeight", "fpWeight", "fnWeight"))
        out.append(Profile(name, *weights))
    return out


def load_windows(nab_root: str | Path) -> Windows:
    """labels/combined_windows.json: "category/file.csv" -> [(start, end)], ends inclusive."""
    raw = json.loads((Path(nab_root) / "labels" / "combined_windows.json").read_text())
    return {key: [(str(a), str(b)) for a, b in spans] for key, spans in raw.items()}


def probation_length(n_rows: int) -> int:
    """Rows at the start of a file that count for nothing (the detector is still learning)."""
    return min(math.floor(PROBATION_FRACTION * n_rows), MAX_PROBATION)


def _norm_timestamp(ts: str) -> str:
    """Drop the ".000000" the label file adds and any ISO "T", so both sides compare as text."""
    ts = ts.strip().replace("T", " ")
    head, dot, frac = ts.partition(".")
    return head if dot and frac.strip("0") == "" else ts


def window_rows(
    timestamps: Sequence[str], windows: Sequence[tuple[str, str]]
) -> list[tuple[int, int]]:
    """Inclusive row ranges of the windows; both ends must be timestamps of the file."""
    index = {_norm_timestamp(ts): i for i, ts in enumerate(timestamps)}
    rows = []
    for start, end in windows:
        try:
            left, right = index[_norm_timestamp(start)], index[_norm_timestamp(end)]
        except KeyError as exc:
            raise ValueError(f"window end {exc.args[0]!r} is not a timestamp of the file") from None
        if right < left:
            raise ValueError(f"window {start} .. {end} ends before it starts")
        rows.append((left, right))
    rows.sort()
    for (_, prev_right), (left, _) in itertools.pairwise(rows):
        if left <= prev_right:
            raise ValueError("windows overlap")
    return rows


@dataclass(frozen=True)
class NabFile:
    """One file reduced to what scoring needs, independent of the profile.

    `window_of_row[i]` is the index into `windows` of the counted window holding row i, else -1.
    `unit[i]` is S(pos)/maxTP inside a window (times tpWeight = TP weight) and u outside
    (times fpWeight = FP weight); probation rows have window -1 and unit 0, i.e. they weigh nothing.
    """

    name: str
    scores: FloatArray
    probation: int
    windows: tuple[tuple[int, int], ...]
    window_of_row: IntArray
    unit: FloatArray


def build_file(
    name: str,
    timestamps: Sequence[str],
    scores: npt.ArrayLike,
    windows: Sequence[tuple[str, str]],
) -> NabFile:
    """Precompute the per-row weights of one file (README steps 2 to 5)."""
    values = np.asarray(scores, dtype=np.float64)
    n = len(timestamps)
    if values.shape != (n,):
        raise ValueError(f"{name}: {values.shape} scores for {n} timestamps")
    if np.isnan(values).any():
        raise ValueError(f"{name}: NaN anomaly scores")
    probation = probation_length(n)
    spans = window_rows(timestamps, windows)
    # Windows inside the probation are not counted, but still shape the FP weights after them.
    counted = tuple((a, b) for a, b in spans if b >= probation)

    rows = np.arange(n, dtype=np.float64)
    unit = np.full(n, -1.0)  # u = -1 until the first window has ended
    window_of_row = np.full(n, -1, dtype=np.intp)
    next_lefts = [a for a, _ in spans[1:]] + [n] if spans else []
    for (left, right), next_left in zip(spans, next_lefts, strict=True):
        width = right - left + 1
        pos = -(right - rows[left : right + 1] + 1) / width
        unit[left : right + 1] = scaled_sigmoid(pos) / MAX_TP
        after = rows[right + 1 : next_left]
        # A one-row window has W-1 = 0: treat the distance as infinite, i.e. S = -1.
        unit[right + 1 : next_left] = (
            scaled_sigmoid((after - right) / (width - 1)) if width > 1 else -1.0
        )
    for k, (left, right) in enumerate(counted):
        window_of_row[left : right + 1] = k
    unit[:probation] = 0.0
    window_of_row[:probation] = -1
    return NabFile(name, values, probation, counted, window_of_row, unit)


def score_file(f: NabFile, threshold: float, profile: Profile) -> float:
    """Raw score of one file when every row with score >= threshold is a detection (step 6)."""
    detected = np.flatnonzero(f.scores >= threshold)
    detected = detected[detected >= f.probation]
    win = f.window_of_row[detected]
    total = profile.fp * float(f.unit[detected[win < 0]].sum())
    best = np.full(len(f.windows), -profile.fn)
    np.maximum.at(best, win[win >= 0], profile.tp * f.unit[detected[win >= 0]])
    return total + float(best.sum())


def optimize(files: Sequence[NabFile], profile: Profile) -> tuple[float, float]:
    """Best corpus threshold and its raw score, sweeping every distinct score plus 1.1 (step 7).

    All rows of all files are sorted by score, descending; lowering the threshold past a row adds
    its FP weight, or raises its window from max(-fn, best so far) to include it. One cumulative
    sum of those deltas gives the corpus score at every threshold; it is read at the last row of
    each group of equal scores, since a threshold takes every row >= it. Ties keep the first
    threshold in descending order (np.argmax returns the first maximum).
    """
    n_windows = sum(len(f.windows) for f in files)
    if not any(len(f.scores) for f in files):
        return NO_DETECTION, -profile.fn * n_windows
    offsets = np.cumsum([0, *(len(f.windows) for f in files)])[:-1]
    scores = np.concatenate([f.scores for f in files])
    win = np.concatenate(
        [
            np.where(f.window_of_row >= 0, f.window_of_row + off, -1)
            for f, off in zip(files, offsets, strict=True)
        ]
    )
    unit = np.concatenate([f.unit for f in files])

    order = np.argsort(-scores, kind="stable")
    scores, win, unit = scores[order], win[order], unit[order]
    delta = np.where(win < 0, profile.fp * unit, 0.0)  # probation rows: unit 0, no effect

    in_window = np.flatnonzero(win >= 0)
    by_window = in_window[np.argsort(win[in_window], kind="stable")]  # keeps descending scores
    ids = win[by_window]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    for a, b in zip(starts, [*starts[1:], len(ids)], strict=True):
        rows = by_window[a:b]
        running = np.maximum.accumulate(np.r_[-profile.fn, profile.tp * unit[rows]])
        delta[rows] = np.diff(running)

    totals = -profile.fn * n_windows + np.cumsum(delta)
    ends = np.flatnonzero(np.r_[scores[1:] != scores[:-1], True])
    no_detection = NO_DETECTION if scores[0] < NO_DETECTION else math.inf
    thresholds = np.r_[no_detection, scores[ends]]
    candidates = np.r_[-profile.fn * n_windows, totals[ends]]
    best = int(np.argmax(candidates))
    return float(thresholds[best]), float(candidates[best])


def normalize(raw: float, n_windows: int, profile: Profile) -> float:
    """NAB's 0..100 scale: 0 = never detect (every window missed), 100 = each left edge hit."""
    null = -profile.fn * n_windows
    perfect = profile.tp * n_windows
    if perfect == null:
        raise ValueError("cannot normalise a corpus without windows")
    return 100.0 * (raw - null) / (perfect - null)


def score_corpus(
    files: Mapping[str, tuple[Sequence[str], npt.ArrayLike]],
    windows: Mapping[str, Sequence[tuple[str, str]]],
    profiles: Sequence[Profile],
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, dict[str, float]]:
    """Per profile: optimised (or given) threshold, raw corpus score and normalised score.

    `files` maps "category/file.csv" to (timestamps, scores); every file needs a windows entry
    (an empty list for files without anomalies). Pass `thresholds` (profile name -> threshold) to
    score at published thresholds instead of optimising.
    """
    missing = sorted(set(files) - set(windows))
    if missing:
        raise ValueError(f"no windows for {len(missing)} file(s), e.g. {missing[0]}")
    prepared = [build_file(k, ts, sc, windows[k]) for k, (ts, sc) in sorted(files.items())]
    n_windows = sum(len(f.windows) for f in prepared)
    out = {}
    for profile in profiles:
        if thresholds is None:
            threshold, _ = optimize(prepared, profile)
        else:
            threshold = thresholds[profile.name]
        raw = sum(score_file(f, threshold, profile) for f in prepared)
        score = normalize(raw, n_windows, profile)
        out[profile.name] = {"threshold": threshold, "raw": raw, "score": score}
    return out


def read_results(results_dir: str | Path, detector_name: str) -> Results:
    """NAB result CSVs `<results_dir>/<det>/<category>/<det>_<file>.csv` -> (timestamps, scores).

    Only the timestamp and anomaly_score columns are read; NAB's own outputs carry extra S(t)
    columns, and the per-profile summary CSVs at `<det>/` level are skipped.
    """
    root = Path(results_dir) / detector_name
    if not root.is_dir():
        raise FileNotFoundError(f"no results folder {root}")
    prefix = f"{detector_name}_"
    out: Results = {}
    for category in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(category.glob(f"{prefix}*.csv")):
            timestamps: list[str] = []
            scores: list[float] = []
            with path.open(newline="") as fh:
                for row in csv.DictReader(fh):
                    timestamps.append(row["timestamp"])
                    scores.append(float(row["anomaly_score"]))
            out[f"{category.name}/{path.name[len(prefix) :]}"] = (
                timestamps,
                np.asarray(scores, dtype=np.float64),
            )
    if not out:
        raise FileNotFoundError(f"no {prefix}*.csv result files under {root}/<category>/")
    return out


def write_results(
    results_dir: str | Path,
    detector_name: str,
    key: str,
    timestamps: Sequence[str],
    values: npt.ArrayLike,
    scores: npt.ArrayLike,
    windows: Sequence[tuple[str, str]],
) -> Path:
    """Write one file in NAB's result format, so NAB's own runner can score it too.

    `key` is "category/file.csv"; label is 1 inside a window (ends inclusive), else 0.
    """
    category, _, name = key.partition("/")
    vals = np.asarray(values, dtype=np.float64)
    scs = np.asarray(scores, dtype=np.float64)
    if not (len(timestamps) == len(vals) == len(scs)):
        raise ValueError(f"{key}: timestamps, values and scores differ in length")
    labels = np.zeros(len(timestamps), dtype=np.int8)
    for left, right in window_rows(timestamps, windows):
        labels[left : right + 1] = 1
    path = Path(results_dir) / detector_name / category / f"{detector_name}_{name}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for ts, v, s, lab in zip(
            timestamps, vals.tolist(), scs.tolist(), labels.tolist(), strict=True
        ):
            writer.writerow((ts, repr(v), repr(s), lab))
    return path


def nab_root(data: str | Path | None = None) -> Path:
    """The NAB folder: `<bench root>/nab`, or the given folder itself if it already is one."""
    root = bench_root(data)
    return root if (root / "labels" / "combined_windows.json").is_file() else root / "nab"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score NAB result CSVs with our own NAB scorer.")
    parser.add_argument("--detector", required=True, help="detector name, e.g. windowedGaussian")
    parser.add_argument("--results", help="folder holding <detector>/ (default: <nab>/results)")
    parser.add_argument("--data", help="benchmark data root (default: $ANOMSTREAM_BENCH_DATA, ...)")
    args = parser.parse_args(argv)
    try:
        root = nab_root(args.data)
        results_dir = Path(args.results) if args.results else root / "results"
        windows = load_windows(root)
        files = read_results(results_dir, args.detector)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    missing = sorted(set(windows) - set(files))
    if missing:
        print(f"missing results for {len(missing)} NAB file(s), e.g. {missing[0]}", file=sys.stderr)
        return 2
    scored = score_corpus(files, windows, load_profiles(root))
    print(f"{args.detector}: {len(files)} files, {sum(len(w) for w in windows.values())} windows")
    for name, r in scored.items():
        print(
            f"  {name:<20} score {r['score']:8.4f}  raw {r['raw']:10.4f}"
            f"  threshold {r['threshold']:.6g}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
