"""NAB runner: the stream's own detector stack over the 58 NAB files, scored by our NAB scorer.

Each file is one source with one signal, `value`; its rows are fed in order through the same
`Scorer`, suite and default configuration as the worker (one configuration for all files, causal:
a row's score uses only that row and the ones before it). All files advance together, one
micro-batch of `chunk` rows per file at a time, as the stream batches (scores do not depend on the
cut). A row's NAB anomaly score is its record score where the stream would alert on it at some
threshold (it escalates, see `Scorer._escalate`), else 0; warming rows score 0 (no events).

It also measures, with the same configuration, the false-alarm rate at `target_fap` on
anomaly-free data (NAB's artificialNoAnomaly, SKAB's anomaly-free file), the cost of the suite
per signal value (100 sources x 8 signals) and the state size per signal.

Usage: `python -m bench.nab.runner [--data DIR] [--out DIR] [--without KIND ...] [--with KIND ...]
[--set KIND.FIELD=VALUE ...] [--compare KIND]`; by default it also runs without the seasonal
detector and prints both. `--set` measures a parameter change (20 s a run) before it is made.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from bench.datasets import bench_root
from bench.nab import scorer as nab
from detectors.engine import Scorer, ScoringConfig
from detectors.protocol import Detector
from detectors.records import Record
from detectors.registry import REGISTRY, default_suite
from detectors.results import Scored
from detectors.source_state import SourceState

RESULTS = Path(__file__).resolve().parents[1] / "results"
DETECTOR_NAME = "anomstream"
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
BOARD = ("ARTime", "numenta", "contextOSE", "knncad", "relativeEntropy", "windowedGaussian")


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
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))[1:]
        files.append(
            NabFile(
                key=f"{path.parent.name}/{path.name}",
                timestamps=[r[0] for r in rows],
                values=np.array([float(r[1]) for r in rows]),
            )
        )
    if not files:
        raise click.ClickException(f"no NAB files (category/*.csv) under {data_dir}")
    return files


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


def apply_settings(
    suite: Sequence[Detector], config: ScoringConfig, settings: Sequence[str]
) -> tuple[list[Detector], ScoringConfig]:
    """`kind.field=value` (a detector's parameter) or `config.field=value` (a scoring knob)
    applied to copies: for measuring a change on NAB before making it the stream's default."""
    detectors = list(suite)
    for item in settings:
        target, sep, text = item.partition("=")
        kind, dot, name = target.partition(".")
        if not sep or not dot or not name:
            raise click.BadParameter(f"{item!r}: expected kind.field=value", param_hint="--set")
        if kind == "config":
            objects: list[Any] = [config]
        else:
            objects = [d for d in detectors if d.kind == kind]
        if not objects:
            raise click.BadParameter(
                f"{item!r}: no detector {kind!r} in the suite", param_hint="--set"
            )
        names = {f.name for f in dataclasses.fields(objects[0]) if f.init}
        current = getattr(objects[0], name, None)
        if name not in names or type(current) not in (int, float, bool):
            raise click.BadParameter(
                f"{item!r}: {kind} has no numeric field {name!r}", param_hint="--set"
            )
        try:
            value = _parse(text, type(current))
        except ValueError:
            raise click.BadParameter(
                f"{item!r}: {text!r} is not {KIND_NAMES[type(current)]}", param_hint="--set"
            ) from None
        change: dict[str, Any] = {name: value}
        if kind == "config":
            config = dataclasses.replace(config, **change)
        else:
            try:
                detectors = [
                    dataclasses.replace(cast(Any, d), **change) if d.kind == kind else d
                    for d in detectors
                ]
            except ValueError as exc:
                raise click.BadParameter(f"{item!r}: {exc}", param_hint="--set") from None
    return detectors, config


KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false"}


def _parse(text: str, kind: type) -> int | float | bool:
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError(text)
        return text.lower() == "true"
    return int(text) if kind is int else float(text)


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


@click.command()
@click.option("--data", type=click.Path(path_type=Path), help="benchmark data root")
@click.option("--out", type=click.Path(path_type=Path), help="where to write NAB result CSVs")
@click.option("--without", multiple=True, help="leave a detector kind out (ablation)")
@click.option(
    "--with", "extra", multiple=True, help="add a registered detector the stream does not run"
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KIND.FIELD=VALUE",
    help="change a detector parameter (persist.span=2000) or a scoring knob "
    "(config.realert_after=300) for this run",
)
@click.option(
    "--compare",
    default="seasonal",
    show_default=True,
    help="also run without this detector kind and print both ('' = no comparison)",
)
def main(
    data: Path | None,
    out: Path | None,
    without: tuple[str, ...],
    extra: tuple[str, ...],
    settings: tuple[str, ...],
    compare: str,
) -> None:
    """Run the stream's detector stack over NAB and print the scores beside the scoreboard."""
    try:
        root = nab.nab_root(data)
        bench = bench_root(data)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    unknown = sorted(set(without) - {d.kind for d in default_suite()})
    if unknown:
        raise click.ClickException(f"unknown detector kind(s): {', '.join(unknown)}")
    missing = sorted(set(extra) - set(REGISTRY))
    if missing:
        raise click.ClickException(f"unknown detector kind(s): {', '.join(missing)}")
    suite = [d for d in default_suite() if d.kind not in without]
    suite += [REGISTRY[kind]() for kind in extra if kind not in {d.kind for d in suite}]
    suite, config = apply_settings(suite, ScoringConfig(), settings)
    files = load_corpus(root / "data")
    windows = nab.load_windows(root)
    started = time.perf_counter()
    scores, corpus, categories = evaluate(files, windows, root, suite, config)
    elapsed = time.perf_counter() - started
    reduced = [d for d in suite if d.kind != compare]
    other = evaluate(files, windows, root, reduced, config) if len(reduced) < len(suite) else None
    rows = sum(len(f.values) for f in files)
    if out is not None:
        for f in files:
            nab.write_results(
                out, DETECTOR_NAME, f.key, f.timestamps, f.values, scores[f.key], windows[f.key]
            )
    clean = [f for f in files if f.key.startswith("artificialNoAnomaly/")]
    nab_rate = alarm_rate(clean, config, suite)
    skab_file = bench / "skab" / "data" / "anomaly-free" / "anomaly-free.csv"
    skab_rate = skab_alarm_rate(skab_file, config, suite) if skab_file.is_file() else None
    per_value, state_bytes = suite_cost(config, suite)
    base_value, base_bytes = suite_cost(config, reduced) if other is not None else (0.0, 0.0)

    published = json.loads((root / "results" / "final_results.json").read_text())
    table = Table(title=f"NAB v1.1, {len(files)} files, {rows:,} rows (normalised scores)")
    table.add_column("detector")
    for name in ("standard", "low FP", "low FN"):
        table.add_column(name, justify="right")
    label = "anomstream" + (f" (without {', '.join(without)})" if without else "")
    label += f" (with {', '.join(extra)})" if extra else ""
    label += f" ({', '.join(settings)})" if settings else ""
    table.add_row(label, *(f"{corpus[p]['score']:.1f}" for p in PROFILES), style="bold")
    if other is not None:
        table.add_row(
            f"  ... without {compare}", *(f"{other[1][p]['score']:.1f}" for p in PROFILES)
        )
    for name in BOARD:
        table.add_row(name, *(f"{published[name][p]:.1f}" for p in PROFILES))
    console = Console(width=max(Console().width, 110))
    console.print(table)
    detail = Table(title="standard profile at the corpus threshold, by category (raw score)")
    columns = ["category", "raw", "windows", "found", "FP rows", "FP cost"]
    if other is not None:
        columns += [f"raw w/o {compare}", "found", "FP rows"]
    for column in columns:
        detail.add_column(column, justify="left" if column == "category" else "right")
    for name, row in sorted(categories.items()):
        cells = [
            name,
            f"{row['raw']:+.2f}",
            f"{row['windows']:.0f}",
            f"{row['detected']:.0f}",
            f"{row['fp']:.0f}",
            f"{row['fp_weight']:+.1f}",
        ]
        if other is not None:
            base = other[2][name]
            cells += [f"{base['raw']:+.2f}", f"{base['detected']:.0f}", f"{base['fp']:.0f}"]
        detail.add_row(*cells)
    console.print(detail)
    console.print(
        f"alarm rate at target_fap={config.target_fap:g} after warm-up, records flagged "
        f"(alarms: runs of flagged records): NAB artificialNoAnomaly {nab_rate.records:.2e} "
        f"({nab_rate.alarms:.2e})"
        + (
            f", SKAB anomaly-free {skab_rate.records:.2e} ({skab_rate.alarms:.2e})"
            if skab_rate is not None
            else ""
        )
    )
    console.print(
        f"cost: {per_value:.2f} us per signal value (100 sources x 8 signals, "
        f"{len(suite)} detectors); NAB run {elapsed / rows * 1e6:.1f} us per 1-signal record; "
        f"state {state_bytes:,.0f} bytes per signal"
        + (
            f" (without {compare}: {base_value:.2f} us, {base_bytes:,.0f} bytes)"
            if other is not None
            else ""
        )
    )
    RESULTS.mkdir(exist_ok=True)
    name = "nab" + "".join(f"_without_{k}" for k in without) + "".join(f"_with_{k}" for k in extra)
    name += "".join(f"_set_{item.replace('=', '-')}" for item in settings)
    (RESULTS / f"{name}.json").write_text(
        json.dumps(
            {
                "suite": [d.kind for d in suite],
                "settings": list(settings),
                "scores": corpus,
                "categories": categories,
                f"without_{compare}": None
                if other is None
                else {"scores": other[1], "categories": other[2]},
                "alarm_rate": {
                    "nab_no_anomaly": nab_rate.to_json(),
                    "skab_anomaly_free": None if skab_rate is None else skab_rate.to_json(),
                },
                "us_per_signal_value": per_value,
                "state_bytes_per_signal": state_bytes,
                f"us_per_signal_value_without_{compare}": base_value,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
