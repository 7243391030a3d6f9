"""NAB runner: the stream's own detector stack over the 58 NAB files, scored by our NAB scorer.

Each file is one source with one signal, `value`; its rows are fed in order through the same
`Scorer`, suite and default configuration as the worker (one configuration for all files, causal:
a row's score uses only that row and the ones before it). All files advance together, one
micro-batch of `chunk` rows per file at a time, as the stream batches (scores do not depend on the
cut). A row's NAB anomaly score is its record score where the stream would alert on it at some
threshold (it escalates, see `detectors.alerting.escalate`), else 0; warming rows score 0 (no
events).

It also measures, with the same configuration, the false-alarm rate at `target_fap` on
anomaly-free data (NAB's artificialNoAnomaly, SKAB's anomaly-free file), the cost of the suite
per signal value (100 sources x 8 signals) and the state size per signal.

Usage: `python -m bench.nab.runner [--data DIR] [--out DIR] [--without KIND ...] [--with KIND ...]
[--set KIND.FIELD=VALUE ...] [--compare KIND]`; by default it also runs without the seasonal
detector and prints both. `--set` measures a parameter change (20 s a run) before it is made.

The pieces: `bench.nab.stream` (the corpus through the scorer, scored), `bench.nab.measures`
(alarm rate, cost, state size), `bench.nab.settings` (`--set`); this module runs them and prints.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from bench.datasets import bench_root
from bench.nab import scorer as nab
from bench.nab.measures import alarm_rate, skab_alarm_rate, suite_cost
from bench.nab.settings import apply_settings
from bench.nab.stream import evaluate, load_corpus
from detectors.engine import ScoringConfig
from detectors.registry import REGISTRY, default_suite

RESULTS = Path(__file__).resolve().parents[1] / "results"
DETECTOR_NAME = "anomstream"
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
BOARD = ("ARTime", "numenta", "contextOSE", "knncad", "relativeEntropy", "windowedGaussian")


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
