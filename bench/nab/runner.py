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

NAB's figures are in-sample by construction (one threshold optimised on the corpus it scores);
beside them it prints the leave-one-category-out figures (`bench.nab.crossval`), and with
`--cv KIND.FIELD=V1,V2,...` it cross-validates a knob's value the same way (one rescoring of the
corpus per value, ~8 s each).

The pieces: `bench.nab.stream` (the corpus through the scorer, scored), `bench.nab.measures`
(alarm rate, cost, state size), `bench.nab.settings` (`--set`), `bench.nab.crossval`; this
module runs them and prints.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from bench.datasets import bench_root
from bench.nab import crossval
from bench.nab import scorer as nab
from bench.nab.measures import alarm_rate, skab_alarm_rate, suite_cost
from bench.nab.settings import CHOSEN_ON_NAB, apply_settings
from bench.nab.stream import NabFile, evaluate, load_corpus, run_stream
from detectors.engine import ScoringConfig
from detectors.registry import REGISTRY, default_suite

RESULTS = Path(__file__).resolve().parents[1] / "results"
DETECTOR_NAME = "anomstream"
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
SHORT = {"standard": "std", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}
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
@click.option(
    "--cv",
    "knobs",
    multiple=True,
    metavar="KIND.FIELD=V1,V2,...",
    help="cross-validate a knob over NAB's categories: the corpus rescored at each value, each "
    "fold choosing the value and the threshold on the other categories",
)
@click.option(
    "--cv-defaults",
    is_flag=True,
    help="--cv every default that was chosen on NAB (bench.nab.settings.CHOSEN_ON_NAB, ~3 min)",
)
def main(
    data: Path | None,
    out: Path | None,
    without: tuple[str, ...],
    extra: tuple[str, ...],
    settings: tuple[str, ...],
    compare: str,
    knobs: tuple[str, ...],
    cv_defaults: bool,
) -> None:
    """Run the stream's detector stack over NAB and print the scores beside the scoreboard."""
    try:
        root = nab.nab_root(data)
        bench = bench_root(data)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    knob_values = [parse_knob(item) for item in knobs]
    if cv_defaults:
        knob_values += [(k, list(v)) for k, v in CHOSEN_ON_NAB.items()]
    unknown = sorted(set(without) - {d.kind for d in default_suite()})
    if unknown:
        raise click.ClickException(f"unknown detector kind(s): {', '.join(unknown)}")
    missing = sorted(set(extra) - set(REGISTRY))
    if missing:
        raise click.ClickException(f"unknown detector kind(s): {', '.join(missing)}")
    suite = [d for d in default_suite() if d.kind not in without]
    suite += [REGISTRY[kind]() for kind in extra if kind not in {d.kind for d in suite}]
    suite, config = apply_settings(suite, ScoringConfig(), settings)
    for target, values in knob_values:  # a bad value fails now, not after the first runs
        for value in values:
            apply_settings(suite, config, [f"{target}={value}"])
    files, windows, profiles, published = load(root)
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

    thresholds = {p: corpus[p]["threshold"] for p in PROFILES}
    crossed = crossval.report(
        {"default": built(files, scores, windows)}, profiles, thresholds, "default"
    )
    tuned: dict[str, dict[str, dict[str, Any]]] = {}
    for target, values in knob_values:
        variants = {"default": built(files, scores, windows)}
        for value in values:
            changed, cfg = apply_settings(suite, config, [f"{target}={value}"])
            variants[f"{target}={value}"] = built(
                files, run_stream(files, cfg, changed)[0], windows
            )
        tuned[target] = crossval.report(variants, profiles, thresholds, "default")
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
    for name in BOARD if published else ():
        table.add_row(name, *(f"{published[name][p]:.1f}" for p in PROFILES))
    console = Console(width=max(Console().width, 140))
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
    print_crossval(console, crossed, tuned)
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
                "crossval": {"threshold": crossed, "knobs": tuned},
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


def parse_knob(item: str) -> tuple[str, list[str]]:
    """`kind.field=v1,v2` -> ("kind.field", ["v1", "v2"]); the values are checked by
    `apply_settings`, like `--set`'s."""
    target, sep, text = item.partition("=")
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not sep or "." not in target or not values:
        raise click.BadParameter(f"{item!r}: expected kind.field=v1,v2,...", param_hint="--cv")
    return target, values


def load(root: Path) -> tuple[list[NabFile], nab.Windows, list[nab.Profile], dict[str, Any]]:
    """The corpus, its windows, the profiles and the published scoreboard (empty if absent),
    each checked before the first run: a bad data folder is one line, not a traceback."""
    files = load_corpus(root / "data")
    try:
        windows = nab.load_windows(root)
        profiles = nab.load_profiles(root)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"NAB labels or profiles under {root}: {exc!r:.200}") from None
    unlabelled = sorted(f.key for f in files if f.key not in windows)
    if unlabelled:
        raise click.ClickException(
            f"{len(unlabelled)} file(s) without an entry in labels/combined_windows.json, "
            f"e.g. {unlabelled[0]}"
        )
    for f in files:
        try:
            nab.build_file(f.key, f.timestamps, np.zeros(len(f.values)), windows[f.key])
        except ValueError as exc:
            raise click.ClickException(f"{f.key}: {exc}") from None
    board = root / "results" / "final_results.json"
    try:
        published = json.loads(board.read_text()) if board.is_file() else {}
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{board}: {exc}") from None
    return files, windows, profiles, published


def built(
    files: list[NabFile], scores: dict[str, np.ndarray], windows: nab.Windows
) -> list[nab.NabFile]:
    return [nab.build_file(f.key, f.timestamps, scores[f.key], windows[f.key]) for f in files]


def print_crossval(
    console: Console,
    crossed: dict[str, dict[str, Any]],
    tuned: dict[str, dict[str, dict[str, Any]]],
) -> None:
    """In-sample beside leave-one-category-out, per profile, with the per-category spread and
    each fold's threshold (as the alert p it stands for); then each `--cv` knob's folds."""
    table = Table(
        title="in-sample (NAB: threshold optimised on the whole corpus) and leave-one-category-"
        "out (threshold optimised on the other 6 categories); per-category score min / median / max"
    )
    for column in ("profile", "in-sample", "per category", "cross-validated", "per category"):
        table.add_column(column, justify="left" if column == "profile" else "right")
    for profile, r in crossed.items():
        a, b = r["in_sample"], r["cross_validated"]
        table.add_row(
            profile,
            f"{a['score']:.1f}",
            spread_text(a["per_category"]),
            f"{b['score']:.1f}",
            spread_text(b["per_category"]),
        )
    console.print(table)
    folds = Table(
        title="leave-one-category-out folds: raw score of the held-out category in-sample and "
        "at the threshold (alert p) optimised on the other categories"
    )
    folds.add_column("held out")
    for profile in crossed:
        for column in ("in", "CV", "alert p"):
            folds.add_column(f"{SHORT[profile]} {column}", justify="right")
    for name in next(iter(crossed.values()))["folds"]:
        cells = [name]
        for r in crossed.values():
            fold = r["folds"][name]
            cells += [
                f"{fold['in_sample_raw']:+.2f}",
                f"{fold['raw']:+.2f}",
                f"{1 - fold['threshold']:.1e}",
            ]
        folds.add_row(*cells)
    console.print(folds)
    if not tuned:
        return
    knobs = Table(
        title="--cv: each fold chooses the knob's value (default or a neighbour) and the threshold "
        "on the other 6 categories"
    )
    for column in ("knob", *(f"{SHORT[p]} CV" for p in crossed), "std in-sample best", "std folds"):
        knobs.add_column(column, justify="left" if column in ("knob", "std folds") else "right")
    knobs.add_row(
        "(default, threshold only)",
        *(f"{r['cross_validated']['score']:.1f}" for r in crossed.values()),
        f"{crossed['standard']['in_sample']['score']:.1f}",
        "",
    )
    for target, by_profile in tuned.items():
        std = by_profile["standard"]
        chosen = Counter(
            str(fold["choice"]).removeprefix(f"{target}=") for fold in std["folds"].values()
        )
        best = str(std["in_sample_best"]["choice"]).removeprefix(f"{target}=")
        knobs.add_row(
            target,
            *(f"{r['cross_validated']['score']:.1f}" for r in by_profile.values()),
            f"{std['in_sample_best']['score']:.1f} ({best})",
            ", ".join(f"{c} x{n}" for c, n in chosen.most_common()),
        )
    console.print(knobs)


def spread_text(s: dict[str, float]) -> str:
    return f"{s['min']:.0f} / {s['median']:.0f} / {s['max']:.0f}"


if __name__ == "__main__":
    main()
