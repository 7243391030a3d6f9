"""NAB through the stream's scorer: the corpus as records, their NAB scores, the corpus scored.

What the NAB figures are made of, apart from the runner that prints them, so that the tests
can check the scores are the stream scorer's own alert scores on a few files.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click
import numpy as np

from bench.nab import scorer as nab
from detectors.engine import Scorer, ScoringConfig
from detectors.protocol import Detector
from detectors.records import Record
from detectors.source_state import SourceState


@dataclass(frozen=True, slots=True)
class NabFile:
    key: str
    """`category/name.csv`, as in the label files."""
    timestamps: list[str]
    values: np.ndarray

    def records(self) -> list[Record]:
        """The rows as the stream would see them: one source, one signal `value`."""
        return [
            Record(self.key, epoch(ts), ts, {"value": float(v)})
            for ts, v in zip(self.timestamps, self.values, strict=True)
        ]


def load_corpus(data_dir: Path) -> list[NabFile]:
    """Every `category/*.csv` under `data_dir`, in a fixed order."""
    files = []
    for path in sorted(data_dir.glob("*/*.csv")):
        files.append(read_file(path))
    if not files:
        raise click.ClickException(f"no NAB files (category/*.csv) under {data_dir}")
    return files


def read_file(path: Path) -> NabFile:
    """One `timestamp,value` file, or a one-line error naming the file and the line: a bad file
    is the user's data, and a benchmark never ends with a traceback."""
    timestamps: list[str] = []
    values: list[float] = []
    try:
        with path.open(newline="") as fh:
            rows = csv.reader(fh)
            next(rows, None)  # the header
            for line, row in enumerate(rows, start=2):
                try:
                    epoch(row[0])
                    values.append(float(row[1]))
                except (IndexError, ValueError):
                    raise click.ClickException(
                        f"{path}, line {line}: expected a timestamp and a number, got {row!r:.80}"
                    ) from None
                timestamps.append(row[0])
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    if not timestamps:
        raise click.ClickException(f"{path}: no data rows")
    return NabFile(f"{path.parent.name}/{path.name}", timestamps, np.array(values))


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def run_stream(
    files: list[NabFile],
    config: ScoringConfig,
    suite: Sequence[Detector] | None = None,
    chunk: int = 500,
) -> tuple[dict[str, np.ndarray], float]:
    """NAB scores per file, and the scoring time in seconds (excluding file reading)."""
    scorer = Scorer(config, suite)
    records = [f.records() for f in files]
    scores = {f.key: np.zeros(len(f.values)) for f in files}
    states: dict[str, SourceState] = {}
    longest = max(len(r) for r in records)
    started = time.perf_counter()
    for start in range(0, longest, chunk):
        parts = [(f.key, r[start : start + chunk]) for f, r in zip(files, records, strict=True)]
        batch = [rec for _, recs in parts for rec in recs]
        results = iter(scorer.score_batch(batch, states))
        for key, recs in parts:
            out = scores[key]
            for row in range(start, start + len(recs)):
                res = next(results)
                if res is None:
                    raise RuntimeError(f"{key}: row {row} was taken for a replay")
                out[row] = 1.0 - res.alert_p if res.escalated else 0.0
    return scores, time.perf_counter() - started


def category_scores(
    files: list[NabFile], scores: dict[str, np.ndarray], windows: nab.Windows, threshold: float
) -> dict[str, dict[str, float]]:
    """Per category at the corpus threshold: raw standard score, windows, windows detected,
    false-positive rows and their (negative) weight: where the points are lost."""
    standard = nab.Profile("standard", 1.0, 0.11, 1.0)
    out: dict[str, dict[str, float]] = {}
    for f in files:
        built = nab.build_file(f.key, f.timestamps, scores[f.key], windows[f.key])
        row = out.setdefault(
            f.key.split("/")[0],
            {"raw": 0.0, "windows": 0, "detected": 0, "fp": 0, "fp_weight": 0.0},
        )
        row["raw"] += nab.score_file(built, threshold, standard)
        hits = np.flatnonzero(built.scores >= threshold)
        hits = hits[hits >= built.probation]
        inside = built.window_of_row[hits]
        row["windows"] += len(built.windows)
        row["detected"] += len(set(inside[inside >= 0].tolist()))
        row["fp"] += int((inside < 0).sum())
        row["fp_weight"] += standard.fp * float(built.unit[hits[inside < 0]].sum())
    return out


def evaluate(
    files: list[NabFile],
    windows: nab.Windows,
    root: Path,
    suite: Sequence[Detector],
    config: ScoringConfig | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Scores per file, the corpus scores per profile, and the per-category detail."""
    scores, _ = run_stream(files, config or ScoringConfig(), suite)
    corpus = nab.score_corpus(
        {f.key: (f.timestamps, scores[f.key]) for f in files}, windows, nab.load_profiles(root)
    )
    return scores, corpus, category_scores(files, scores, windows, corpus["standard"]["threshold"])
