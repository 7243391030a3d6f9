"""`make bench-plant`: a fleet with operating modes, scored the way a user would run it.

Per seed (a seed is a plant nobody tuned on): `anomstream train` on the first pump's normal
history, then the stream's scorer (suite + that model, serving every pump) over every pump's
history and then the test part; the events of the test part are judged against the labelled
anomalies (`bench.plant.judge`). Printed per seed and pooled, with the spread over seeds: share
of anomalies with an event, false pages per 10k normal records, first signal right, delay; and
a plain robust z-score per signal beside it, paged the same way.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table as RichTable

from bench.plant.generate import ModalPlant, Series
from bench.plant.judge import Page, Tally, judge
from detectors.autoencoder import OnnxAutoencoder
from detectors.config import ScoringConfig
from detectors.csvdata import read_table
from detectors.messages import anomaly_event
from detectors.offline import score_records, scorer_for

RESULTS = Path(__file__).resolve().parents[1] / "results"
SEEDS = (1, 2, 3, 4, 5)
Z_BASELINE = 4.5
"""About 1e-3 per record over six Gaussian signals: the product's default budget."""


def zscore_pages(series: list[Series], train: int, z: float) -> list[Page]:
    """A robust z-score per signal (median and MAD of the source's history): a page when a
    record crosses `z` on any signal after one that did not (runs page once)."""
    pages = []
    for se in series:
        hist = se.values[:train]
        med = np.median(hist, axis=0)
        mad = np.median(np.abs(hist - med), axis=0) * 1.4826
        zs = np.abs(se.values[train:] - med) / np.where(mad > 0, mad, 1.0)
        over = (zs > z).any(axis=1)
        starts = np.flatnonzero(over & ~np.concatenate([[False], over[:-1]]))
        for k in starts:
            pages.append(Page(se.source, train + int(k), None))
    return pages


def run_seed(
    plant: ModalPlant, scratch: Path, with_model: bool, config: ScoringConfig
) -> tuple[Tally, Tally, float]:
    """The product's tally, the z-score's, and the seconds it took to train."""
    train_csv, history_csv, test_csv = plant.write(scratch / f"seed{plant.seed}")
    series = plant.generate()
    model = None
    seconds = 0.0
    if with_model:
        from training.train import TrainOptions, train

        started = time.monotonic()
        done = train(
            read_table(train_csv), scratch / f"model{plant.seed}", TrainOptions(name="plant")
        )
        seconds = time.monotonic() - started
        model = OnnxAutoencoder.load(done.directory)
    history = read_table(history_csv)
    test = read_table(test_csv, label_col="label", ignore=("culprit",))
    scorer = scorer_for(model, config)
    scored = score_records(scorer, history.records() + test.records())
    pages = []
    index = dict.fromkeys(plant.names, 0)
    for res in scored:
        k = index[res.record.source]
        index[res.record.source] = k + 1
        if k >= plant.train and res.alert:
            event = anomaly_event(res, config)
            first = event["signals"][0]["name"] if event["signals"] else None
            pages.append(Page(res.record.source, k, first))
    spans = {name: range(plant.train, plant.train + plant.test) for name in plant.names}
    injections = [inj for se in series for inj in se.injections]
    mine = judge(injections, pages, spans)
    z = Z_BASELINE
    theirs = judge(injections, zscore_pages(series, plant.train, z), spans)
    return mine, theirs, seconds


def spread(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    return f" (seeds {min(values):.2f}-{max(values):.2f}, sd {statistics.stdev(values):.2f})"


@click.command()
@click.option("--seeds", default=",".join(map(str, SEEDS)), show_default=True)
@click.option("--no-model", is_flag=True, help="the univariate suite alone")
@click.option("--target-fap", type=float, default=1e-3, show_default=True)
@click.option("--sources", type=int, default=4, show_default=True)
def main(seeds: str, no_model: bool, target_fap: float, sources: int) -> None:
    """Train and score a modal plant per seed; print events against its labels."""
    console = Console(width=150)
    config = ScoringConfig(target_fap=target_fap)
    pooled, base = Tally(), Tally()
    per_seed: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in [int(s) for s in seeds.split(",") if s.strip()]:
            plant = ModalPlant(sources=sources, seed=seed)
            mine, theirs, seconds = run_seed(plant, Path(scratch), not no_model, config)
            pooled += mine
            base += theirs
            row = {
                "seed": seed,
                "caught": mine.recall,
                "false_per_10k": mine.false_per_10k,
                "first_right": mine.first_share,
                "z_caught": theirs.recall,
                "z_false_per_10k": theirs.false_per_10k,
            }
            per_seed.append(row)
            console.print(
                f"seed {seed}: caught {mine.caught}/{mine.anomalies}, false pages "
                f"{mine.false_pages} ({mine.false_per_10k:.2f} per 10k), first signal right "
                f"{mine.first_right}/{mine.caught}; z-score: caught {theirs.caught}, false "
                f"{theirs.false_per_10k:.2f} per 10k  (train {seconds:.0f} s)  "
                f"missed {dict(mine.missed)} wrong {dict(mine.wrong_first)}"
            )
    out = RichTable(title=f"modal plant, {len(per_seed)} seeds x {sources} pumps")
    for column in ("detector", "anomalies with an event", "false pages / 10k", "first right"):
        out.add_column(column, justify="left" if column == "detector" else "right")
    name = "anomstream suite" + ("" if no_model else " + autoencoder")
    out.add_row(
        name,
        f"{100 * pooled.recall:.1f} %" + spread([r["caught"] * 100 for r in per_seed]),
        f"{pooled.false_per_10k:.2f}" + spread([r["false_per_10k"] for r in per_seed]),
        f"{100 * pooled.first_share:.1f} %" + spread([r["first_right"] * 100 for r in per_seed]),
        style="bold",
    )
    out.add_row(
        "robust z-score per signal (|z| > 4.5)",
        f"{100 * base.recall:.1f} %",
        f"{base.false_per_10k:.2f}",
        "",
    )
    console.print(out)
    delays = pooled.delays
    console.print(
        f"delay to the first event: median {statistics.median(delays) if delays else 0:.0f} "
        f"records; by kind caught: "
        + ", ".join(f"{k} {pooled.caught_kinds[k]}/{n}" for k, n in sorted(pooled.kinds.items()))
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / ("plant.json" if not no_model else "plant_suite.json")).write_text(
        json.dumps(
            {
                "target_fap": target_fap,
                "caught": pooled.recall,
                "false_per_10k": pooled.false_per_10k,
                "first_right": pooled.first_share,
                "per_seed": per_seed,
                "zscore": {"caught": base.recall, "false_per_10k": base.false_per_10k},
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
