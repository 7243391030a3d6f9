"""SKAB valve1 with the product's own train and detect path (`make bench-skab`).

The protocol of `../shared/bench/README.md`: per file, train on the first 400 rows (assumed
normal), score the rest, sum one confusion matrix over the files. Training is `anomstream train`
with its default recipe (no per-file tuning, no labels); scoring is the stream's scorer (the
univariate suite + the autoencoder + fusion) fed every row in order, so the 400 training rows
also warm the univariate detectors. The autoencoder's own verdict is printed beside the fused
one, and the serving cost per record.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table as RichTable

from bench.datasets import bench_root
from detectors.autoencoder import OnnxAutoencoder
from detectors.csvdata import Table, read_table
from detectors.engine import ScoringConfig
from detectors.offline import score_records, scorer_for
from detectors.records import Record
from detectors.source_state import SourceState
from training.metrics import Confusion, confusion

TRAIN_ROWS = 400
TARGET_FAP = 1e-2
SWEEP = (1e-3, 1e-2, 2e-2, 3e-2, 5e-2)
"""Other settings of the knob, printed for the record (same models, same scores)."""
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


def valve_files(root: Path) -> list[Path]:
    folder = root / "skab" / "data" / "valve1"
    files = sorted(folder.glob("*.csv"), key=lambda p: int(p.stem))
    if not files:
        raise FileNotFoundError(f"no SKAB valve1 files in {folder}")
    return files


def head(table: Table, n: int) -> Table:
    """The first `n` rows: what `anomstream train --train-rows` would see of a file."""
    return replace(
        table,
        times=table.times[:n],
        ts_text=table.ts_text[:n],
        sources=table.sources[:n],
        values=table.values[:n],
        labels=None if table.labels is None else table.labels[:n],
    )


def stream_cost(model: OnnxAutoencoder, sources: int = 100, steps: int = 220) -> float:
    """Microseconds per record the autoencoder adds to the stream's scorer: the same records
    (`sources` sources with the model's signals, micro-batches of 2,000 records) scored with
    and without the model, everything included (windows, inference, imputation, messages)."""
    rng = np.random.default_rng(1)
    spec = model.spec
    values = rng.standard_normal((steps, sources, len(spec.signals))) * spec.scale + spec.center
    recs = [
        Record(
            f"s{j}", 1e9 + i, str(i), dict(zip(spec.signals, values[i, j].tolist(), strict=True))
        )
        for i in range(steps)
        for j in range(sources)
    ]
    best = {False: float("inf"), True: float("inf")}
    for _ in range(3):  # the difference of two similar figures: take each one's best of three
        for with_model in (False, True):
            scorer = scorer_for(model if with_model else None, ScoringConfig())
            states: dict[str, SourceState] = {}
            scorer.score_batch(recs[: 20 * sources], states)  # past the first-value paths
            started = time.perf_counter()
            for a in range(20 * sources, len(recs), 2000):
                scorer.score_batch(recs[a : a + 2000], states)
            spent = (time.perf_counter() - started) / (len(recs) - 20 * sources) * 1e6
            best[with_model] = min(best[with_model], spent)
    return best[True] - best[False]


def serving_cost(model: OnnxAutoencoder, sources: int = 256) -> float:
    """Microseconds per record for the autoencoder's part of a micro-batch: one window per
    source per record, batched across sources as the stream does."""
    rng = np.random.default_rng(0)
    k, w = len(model.spec.signals), model.spec.window
    windows = rng.standard_normal((sources, w, k)) * model.spec.scale + model.spec.center
    observed = np.ones(windows.shape, dtype=bool)
    model.errors(windows, observed)
    started = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        model.errors(windows, observed)
    return (time.perf_counter() - started) / (rounds * sources) * 1e6


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
def main(data: Path | None, files: int | None, target_fap: float, seed: int) -> None:
    """Train and score every valve1 file; print F1 / FAR / MAR beside the leaderboard."""
    from training.train import TrainOptions, train

    try:
        paths = valve_files(bench_root(data))
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    paths = paths[:files] if files else paths
    console = Console()
    fused, alone = Confusion(0, 0, 0, 0), Confusion(0, 0, 0, 0)
    per_file: list[dict[str, float | str]] = []
    seconds = 0.0
    options = TrainOptions(name="skab", target_fap=target_fap, seed=seed)
    sweep: dict[float, list[Confusion]] = {t: [Confusion(0, 0, 0, 0)] * 2 for t in SWEEP}
    model: OnnxAutoencoder | None = None
    with tempfile.TemporaryDirectory() as scratch:
        for path in paths:
            table = read_table(path, label_col="anomaly", ignore=("changepoint",))
            started = time.monotonic()
            done = train(head(table, TRAIN_ROWS), Path(scratch) / path.stem, options)
            seconds += time.monotonic() - started
            model = OnnxAutoencoder.load(done.directory)
            config = ScoringConfig(target_fap=options.target_fap)
            scored = score_records(scorer_for(model, config), table.records())[TRAIN_ROWS:]
            assert table.labels is not None
            truth = table.labels[TRAIN_ROWS:]
            mine = confusion(truth, np.array([r.is_anomaly for r in scored]))
            p = np.array([1.0 if r.model_p is None else r.model_p for r in scored])
            theirs = confusion(truth, p <= config.target_fap)
            fused, alone = fused + mine, alone + theirs
            p_fused = np.array([1.0 if r.warming_up else r.p for r in scored])
            for t, (f, a) in sweep.items():
                sweep[t] = [f + confusion(truth, p_fused <= t), a + confusion(truth, p <= t)]
            per_file.append({"file": path.name, "f1": mine.f1, "far": mine.far, "mar": mine.mar})
            console.print(
                f"{path.name:>7}: F1 {mine.f1:.3f} FAR {100 * mine.far:5.1f} % "
                f"MAR {100 * mine.mar:5.1f} %   autoencoder alone F1 {theirs.f1:.3f} "
                f"FAR {100 * theirs.far:5.1f} %   ({done.seconds:.1f} s)"
            )
        assert model is not None
        cost = serving_cost(model)
        in_stream = stream_cost(model)
        size = (model.spec.path.parent / "model.onnx").stat().st_size if model.spec.path else 0
    table_out = RichTable(
        title=f"SKAB valve1, {len(paths)} files, test part after row {TRAIN_ROWS}"
    )
    for column in ("detector", "F1", "FAR %", "MAR %"):
        table_out.add_column(column, justify="left" if column == "detector" else "right")
    for name, c in (("anomstream (suite + autoencoder)", fused), ("anomstream autoencoder", alone)):
        table_out.add_row(
            name, f"{c.f1:.2f}", f"{100 * c.far:.2f}", f"{100 * c.mar:.2f}", style="bold"
        )
    for name, (f1, far, mar) in BOARD.items():
        table_out.add_row(f"{name} (all SKAB)", f"{f1:.2f}", f"{far:.2f}", f"{mar:.2f}")
    console.print(table_out)
    console.print(
        "target_fap sweep (suite + autoencoder / autoencoder alone): "
        + "; ".join(
            f"{t:g}: F1 {f.f1:.2f} FAR {100 * f.far:.1f} % / F1 {a.f1:.2f} FAR {100 * a.far:.1f} %"
            for t, (f, a) in sweep.items()
        )
    )
    console.print(
        f"training {seconds / len(paths):.1f} s per file; autoencoder {cost:.1f} us per record "
        f"for inference and error (batches of 256 windows), {in_stream:.1f} us per record added "
        f"to the stream's scorer (100 sources x 8 signals, micro-batches of 2,000 records); "
        f"model.onnx {size / 1024:.0f} KiB; "
        f"recipe: {options.kind}, window {options.window}, alpha {options.alpha}, "
        f"target_fap {options.target_fap:g}"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / ("skab.json" if seed == 0 else f"skab_seed{seed}.json")).write_text(
        json.dumps(
            {
                "target_fap": target_fap,
                "fused": {"f1": fused.f1, "far": fused.far, "mar": fused.mar},
                "autoencoder": {"f1": alone.f1, "far": alone.far, "mar": alone.mar},
                "files": per_file,
                "train_seconds_per_file": seconds / len(paths),
                "us_per_record": cost,
                "us_per_record_in_scorer": in_stream,
                "model_bytes": size,
                "sweep": {
                    str(t): {"fused_f1": f.f1, "fused_far": f.far, "ae_f1": a.f1, "ae_far": a.far}
                    for t, (f, a) in sweep.items()
                },
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
