"""`anomstream plant --to-csv`: the demo's plant as a CSV file, so every README command has data.

A fresh clone holds no data to train on or score; this writes the same seeded plant the demo
streams, running normally (to train on) or with its five injected anomalies labelled row by row
(`anomaly` 0/1 and `culprit`, the signal that broke), to evaluate and detect on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from anomstream.plant import SIGNALS, Plant, iso

START_TS = 1_795_514_400.0
"""2026-11-24T10:00:00Z: fixed, so a file is the same on every machine and every run."""


@dataclass(frozen=True, slots=True)
class Written:
    rows: int
    anomalous: int
    sources: int


def write_plant_csv(
    path: Path, rows: int, anomalies: bool, sources: int = 3, seed: int = 7, rate: float = 300.0
) -> Written:
    """About `rows` records (whole time steps over `sources`) with a `timestamp`, `source` and
    one column per signal; with `anomalies` also `anomaly` and `culprit` columns."""
    duration = rows / rate
    plant = Plant(sources=sources, rate=rate, duration=duration, seed=seed, inject=anomalies)
    schedule = plant.schedule()
    written = anomalous = 0
    steps = dict.fromkeys(plant.names, 0)  # a source's k-th record is at k / per_source seconds
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["timestamp", "source", *SIGNALS, *(["anomaly", "culprit"] * anomalies)])
        for ts, source, values in plant.generate(START_TS):
            row: list[object] = [iso(ts), source, *(values[s] for s in SIGNALS)]
            if anomalies:
                t = steps[source] / plant.per_source  # as the injection saw it, exactly
                steps[source] += 1
                hit = next(
                    (i for i in schedule if i.source == source and i.start <= t < i.end), None
                )
                row += [0, ""] if hit is None else [1, hit.signal]
                anomalous += hit is not None
            out.writerow(row)
            written += 1
    return Written(written, anomalous, sources)
