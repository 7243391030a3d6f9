"""SKAB valve1 with the product's own train and detect path (`make bench-skab`).

The protocol of `../shared/bench/README.md`: per file, train on the first 400 rows (assumed
normal), score the rest, sum one confusion matrix over the files. Training is `anomstream train`
with its default recipe (no per-file tuning, no labels); scoring is the stream's scorer (the
univariate suite + the autoencoder + fusion) fed every row in order, so the 400 training rows
also warm the univariate detectors. The autoencoder's own verdict is printed beside the fused
one, and the serving cost per record.

The defaults were chosen on these 16 files, so the fixed-default figure is in-sample. Beside it
the runner prints leave-one-file-out figures (`bench.skab.crossval`): each file scored at the
knobs chosen on the other 15, for `target_fap`, for the error reading (`alpha`, `inflate`) and,
with `--grid`, for the network (kind, window) too (`bench.skab.recipes`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table as RichTable

from bench.datasets import bench_root
from bench.skab import crossval as cv
from bench.skab.cost import serving_cost, stream_cost
from bench.skab.recipes import (
    DEFAULT,
    GRID_FITS,
    TRAIN_ROWS,
    FileRun,
    Recipe,
    grid,
    read_file,
    run_file,
    valve_files,
)
from training.metrics import Confusion

TARGET_FAP = 1e-2
SWEEP = (1e-3, 1e-2, 2e-2, 3e-2, 5e-2)
"""Other settings of the knob, printed for the record (same models, same scores)."""
CV_FAPS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 2e-2, 3e-2, 5e-2)
"""The `target_fap` values leave-one-file-out chooses from."""
RESULTS = Path(__file__).resolve().parents[1] / "results"
BOARD = {  # README of waico/SKAB at the pinned commit: outlier detection, all 34 files
    "Conv-AE": (0.78, 13.55, 28.02),
    "MSET": (0.78, 39.73, 14.13),
    "T-squared+Q (PCA)": (0.76, 26.62, 24.92),
    "LSTM-AE": (0.74, 29.96, 25.92),
    "T-squared": (0.66, 19.21, 42.6),
    "Vanilla AE": (0.39, 2.59, 75.15),
    "Isolation forest": (0.29, 2.56, 82.89),
}

Choice = tuple[Recipe, float]
"""A recipe and a target_fap: one candidate of the leave-one-file-out choice."""


def candidates(
    runs: Sequence[FileRun], recipes: Sequence[Recipe], faps: Sequence[float], first: Choice
) -> dict[Choice, list[Confusion]]:
    """Per candidate, each file's confusion; `first` (the fixed default) leads so it wins ties."""
    keys = [first, *((r, t) for r in recipes for t in faps if (r, t) != first)]
    return {(r, t): [run.scores[r].fused_at(t) for run in runs] for r, t in keys}


def name(choice: Choice) -> str:
    recipe, fap = choice
    return f"{fap:g}" if recipe == DEFAULT else f"{recipe.label} @ {fap:g}"


def fold_report(
    names: Sequence[str], per_file: dict[Choice, list[Confusion]], max_far: float
) -> dict[str, Any]:
    folds = cv.leave_one_out(per_file, max_far)
    return {
        **cv.summary([f.confusion for f in folds]),
        "chosen": dict(Counter(name(f.choice) for f in folds).most_common()),
        "folds": [
            {
                "file": names[f.held_out],
                "choice": name(f.choice),
                "f1": f.confusion.f1,
                "far": f.confusion.far,
                "mar": f.confusion.mar,
            }
            for f in folds
        ],
    }


@click.command()
@click.option("--data", type=click.Path(path_type=Path), help="benchmark data folder")
@click.option("--files", type=int, help="only the first N files (a quick look)")
@click.option(
    "--target-fap",
    type=float,
    default=TARGET_FAP,
    show_default=True,
    help="false-alarm probability per record (the one knob; also given to train)",
)
@click.option("--seed", type=int, default=0, show_default=True, help="training seed")
@click.option(
    "--grid",
    "full_grid",
    is_flag=True,
    help=f"also fit {len(GRID_FITS) - 1} other networks (kind, window) per file for the "
    "cross-validation (~1.5 min each)",
)
@click.option(
    "--max-far",
    type=float,
    default=cv.MAX_FAR,
    show_default=True,
    help="false-alarm budget a fold's choice must meet on its training files",
)
def main(
    data: Path | None,
    files: int | None,
    target_fap: float,
    seed: int,
    full_grid: bool,
    max_far: float,
) -> None:
    """Train and score every valve1 file; print F1 / FAR / MAR beside the leaderboard, in-sample
    and leave-one-file-out."""
    try:
        paths = valve_files(bench_root(data))
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    paths = paths[:files] if files else paths
    if len(paths) < 2:
        raise click.ClickException("leave-one-file-out needs at least two files")
    tables = [read_file(p) for p in paths]  # every file checked before the first fit
    try:
        from training.train import TrainError, train
    except ImportError as exc:
        raise click.ClickException(
            f"training needs the train extra ({exc.name} is missing)"
        ) from None
    recipes = grid(GRID_FITS if full_grid else [DEFAULT.fit])
    console = Console(width=max(Console().width, 120))
    runs: list[FileRun] = []
    for path, table in zip(paths, tables, strict=True):
        try:
            run = run_file(table, recipes, seed, lambda t, out, o: train(t, out, o).directory)
        except (TrainError, ValueError) as exc:
            raise click.ClickException(f"{path}: {exc}") from None
        runs.append(run)
        mine, theirs = (
            run.scores[DEFAULT].fused_at(target_fap),
            run.scores[DEFAULT].model_at(target_fap),
        )
        console.print(
            f"{path.name:>7}: F1 {mine.f1:.3f} FAR {100 * mine.far:5.1f} % "
            f"MAR {100 * mine.mar:5.1f} %   autoencoder alone F1 {theirs.f1:.3f} "
            f"FAR {100 * theirs.far:5.1f} %   ({run.fit_seconds:.1f} s)"
        )
    names = [p.name for p in paths]
    fixed = [run.scores[DEFAULT].fused_at(target_fap) for run in runs]
    fused = cv.total(fixed)
    alone = cv.total([run.scores[DEFAULT].model_at(target_fap) for run in runs])
    sweep = {
        t: (
            cv.total([r.scores[DEFAULT].fused_at(t) for r in runs]),
            cv.total([r.scores[DEFAULT].model_at(t) for r in runs]),
        )
        for t in SWEEP
    }
    faps = sorted({*CV_FAPS, target_fap})
    first = (DEFAULT, target_fap)
    every = candidates(runs, recipes, faps, first)
    reports = {
        "target_fap": fold_report(names, candidates(runs, [DEFAULT], faps, first), max_far),
        "reading": fold_report(
            names,
            candidates(runs, [r for r in recipes if r.fit == DEFAULT.fit], faps, first),
            max_far,
        ),
    }
    if full_grid:
        reports["grid"] = fold_report(names, every, max_far)
    best = cv.choose(every, range(len(runs)), max_far)
    best_summary = cv.summary(every[best])

    model = runs[-1].model
    cost, in_stream = serving_cost(model), stream_cost(model)
    print_board(console, len(paths), fused, alone)
    console.print(
        "target_fap sweep (suite + autoencoder / autoencoder alone): "
        + "; ".join(
            f"{t:g}: F1 {f.f1:.2f} FAR {100 * f.far:.1f} % / F1 {a.f1:.2f} FAR {100 * a.far:.1f} %"
            for t, (f, a) in sweep.items()
        )
    )
    in_sample = cv.summary(fixed)
    print_crossval(
        console, names, target_fap, max_far, in_sample, (name(best), best_summary), reports, fixed
    )
    seconds = sum(r.fit_seconds for r in runs) / len(runs)
    console.print(
        f"training {seconds:.1f} s per file; autoencoder {cost:.1f} us per record "
        f"for inference and error (batches of 256 windows), {in_stream:.1f} us per record added "
        f"to the stream's scorer (100 sources x 8 signals, micro-batches of 2,000 records); "
        f"model.onnx {runs[-1].model_bytes / 1024:.0f} KiB; recipe: {DEFAULT.kind}, window "
        f"{DEFAULT.window}, alpha {DEFAULT.alpha}, inflate {DEFAULT.inflate}, target_fap "
        f"{target_fap:g}"
    )
    per_file = [
        {"file": n, "f1": c.f1, "far": c.far, "mar": c.mar}
        for n, c in zip(names, fixed, strict=True)
    ]
    out = {
        "target_fap": target_fap,
        "fused": {"f1": fused.f1, "far": fused.far, "mar": fused.mar},
        "autoencoder": {"f1": alone.f1, "far": alone.far, "mar": alone.mar},
        "files": per_file,
        "train_seconds_per_file": seconds,
        "us_per_record": cost,
        "us_per_record_in_scorer": in_stream,
        "model_bytes": runs[-1].model_bytes,
        "sweep": {
            str(t): {"fused_f1": f.f1, "fused_far": f.far, "ae_f1": a.f1, "ae_far": a.far}
            for t, (f, a) in sweep.items()
        },
        "crossval": {
            "max_far": max_far,
            "target_faps": faps,
            "recipes": [r.label for r in recipes],
            "in_sample": in_sample,
            "in_sample_best": {"choice": name(best), **best_summary},
            "leave_one_file_out": reports,
            "pooled": {
                name(k): {"f1": cv.total(cs).f1, "far": cv.total(cs).far} for k, cs in every.items()
            },
        },
    }
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / ("skab.json" if seed == 0 else f"skab_seed{seed}.json")
    target.write_text(json.dumps(out, indent=2) + "\n")


def print_board(console: Console, n: int, fused: Confusion, alone: Confusion) -> None:
    table = RichTable(title=f"SKAB valve1, {n} files, test part after row {TRAIN_ROWS}")
    for column in ("detector", "F1", "FAR %", "MAR %"):
        table.add_column(column, justify="left" if column == "detector" else "right")
    for label, c in (
        ("anomstream (suite + autoencoder)", fused),
        ("anomstream autoencoder", alone),
    ):
        table.add_row(
            label, f"{c.f1:.2f}", f"{100 * c.far:.2f}", f"{100 * c.mar:.2f}", style="bold"
        )
    for board, (f1, far, mar) in BOARD.items():
        table.add_row(f"{board} (all SKAB)", f"{f1:.2f}", f"{far:.2f}", f"{mar:.2f}")
    console.print(table)


WHAT = {
    "target_fap": "target_fap",
    "reading": "target_fap, alpha, inflate",
    "grid": "target_fap, alpha, inflate, kind, window",
}


def print_crossval(
    console: Console,
    names: Sequence[str],
    target_fap: float,
    max_far: float,
    in_sample: dict[str, Any],
    best: tuple[str, dict[str, Any]],
    reports: dict[str, dict[str, Any]],
    fixed: Sequence[Confusion],
) -> None:
    """In-sample beside leave-one-file-out: pooled F1 / FAR / MAR, the per-file F1 spread and
    what each fold chose (a default that is stable gets chosen by most folds)."""
    table = RichTable(
        title=f"in-sample and leave-one-file-out (suite + autoencoder; folds choose the best "
        f"F1 with FAR <= {100 * max_far:g} % on the other {len(names) - 1} files)"
    )
    for column in ("figure", "F1", "FAR %", "MAR %", "per-file F1 min / median / max", "std"):
        table.add_column(column, justify="left" if column == "figure" else "right")

    def row(label: str, s: dict[str, Any], style: str = "") -> None:
        spread = s["per_file_f1"]
        table.add_row(
            label,
            f"{s['f1']:.3f}",
            f"{100 * s['far']:.2f}",
            f"{100 * s['mar']:.2f}",
            f"{spread['min']:.2f} / {spread['median']:.2f} / {spread['max']:.2f}",
            f"{spread['std']:.2f}",
            style=style,
        )

    row(f"in-sample, default fixed (target_fap {target_fap:g})", in_sample, "bold")
    row(f"in-sample, best setting tried ({best[0]})", best[1])
    for key, report in reports.items():
        row(f"leave-one-file-out: {WHAT[key]}", report, "bold")
    console.print(table)
    for key, report in reports.items():
        chosen = ", ".join(f"{c} x{n}" for c, n in report["chosen"].items())
        console.print(f"folds' choices of {WHAT[key]}: {chosen}")
    detail = RichTable(title="per held-out file: F1 in-sample / F1 at the fold's choice (choice)")
    detail.add_column("file")
    detail.add_column("in-sample", justify="right")
    for key in reports:
        detail.add_column(f"LOFO {key}", justify="right")
    for i, file in enumerate(names):
        cells = [file, f"{fixed[i].f1:.3f}"]
        for report in reports.values():
            fold = report["folds"][i]
            cells.append(f"{fold['f1']:.3f} ({fold['choice']})")
        detail.add_row(*cells)
    console.print(detail)


if __name__ == "__main__":
    main()
