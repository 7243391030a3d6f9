"""What the NAB runner measures besides NAB, with the same configuration.

The false-alarm rate at `target_fap` on anomaly-free data (NAB's artificialNoAnomaly, SKAB's
anomaly-free file), the cost of the suite per signal value (100 sources x 8 signals) and the
state size per signal: one module for the figures that are not NAB scores.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.nab.stream import NabFile, epoch
from detectors.engine import Scorer, ScoringConfig
from detectors.protocol import Detector
from detectors.records import Record
from detectors.results import Scored
from detectors.source_state import SourceState


@dataclass(frozen=True, slots=True)
class AlarmRate:
    """False alarms per warm record on data without anomalies, two ways."""

    records: float
    """Share of warm records flagged anomalous (score >= 1 - target_fap): the calibration."""
    alarms: float
    """Alarms per warm record, an alarm being a run of consecutive flagged records of a source
    (an episode): what an operator sees when one odd stretch flags several records in a row."""

    def to_json(self) -> dict[str, float]:
        return {"records": self.records, "alarms": self.alarms}


def alarm_rate(files: list[NabFile], config: ScoringConfig, suite: Sequence[Detector]) -> AlarmRate:
    """False alarms after warm-up on series without anomalies, each file its own source."""
    scorer = Scorer(config, suite)
    return flagged_share([res for f in files for res in scorer.score_batch(f.records(), {})])


def flagged_share(results: Sequence[Scored | None]) -> AlarmRate:
    """Share of warm records flagged anomalous, and of warm records that open a run of them."""
    warm = [r for r in results if r is not None and not r.warming_up]
    flagged = opened = 0
    previous: dict[str, bool] = {}
    for r in warm:
        source = r.record.source
        if r.is_anomaly:
            flagged += 1
            opened += not previous.get(source, False)
        previous[source] = r.is_anomaly
    return AlarmRate(flagged / max(len(warm), 1), opened / max(len(warm), 1))


def skab_alarm_rate(path: Path, config: ScoringConfig, suite: Sequence[Detector]) -> AlarmRate:
    """The same on SKAB's anomaly-free file: one source, its 8 signals in every record."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    names = [k for k in rows[0] if k != "datetime"]
    recs = [
        Record("skab", epoch(r["datetime"]), r["datetime"], {n: float(r[n]) for n in names})
        for r in rows
    ]
    return flagged_share(Scorer(config, suite).score_batch(recs, {}))


def suite_cost(config: ScoringConfig, suite: Sequence[Detector]) -> tuple[float, float]:
    """Microseconds per signal value for the whole scoring path, and state bytes per signal."""
    sources, signals, steps = 100, 8, 300
    rng = np.random.default_rng(0)
    values = rng.normal(50.0, 5.0, (steps, sources, signals))
    recs = [
        Record(f"s{j}", 1e9 + i, str(i), {f"x{k}": float(values[i, j, k]) for k in range(signals)})
        for i in range(steps)
        for j in range(sources)
    ]
    scorer = Scorer(config, suite)
    states: dict[str, SourceState] = {}
    scorer.score_batch(recs[: 100 * sources], states)  # warm: past the first-value paths
    started = time.perf_counter()
    for a in range(100 * sources, len(recs), 20 * sources):
        scorer.score_batch(recs[a : a + 20 * sources], states)
    elapsed = time.perf_counter() - started
    per_value = elapsed / ((steps - 100) * sources * signals) * 1e6
    size = sum(len(json.dumps(s.to_json(scorer.suite))) for s in states.values())
    return per_value, size / (sources * signals)
