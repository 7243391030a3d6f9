"""`anomstream train | evaluate | detect`: models from CSV files, and offline scoring.

TensorFlow is imported by `train` only, and only when it runs: `evaluate` and `detect` need
onnxruntime alone, like the worker.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import click
import numpy as np
import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from anomstream.csv_options import TARGET_FAP as FAP_RANGE
from anomstream.csv_options import csv_options, load_csv, names, warn
from detectors.config import TARGET_FAP, ScoringConfig
from detectors.csvdata import Table
from detectors.model_spec import ModelError
from detectors.rules import RuleBook


@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="model directory to write, e.g. models/pumps",
)
@csv_options
@click.option("--window", type=click.IntRange(2, 4096), default=10, show_default=True)
@click.option("--stride", type=click.IntRange(1, 4096), default=1, show_default=True)
@click.option(
    "--kind", type=click.Choice(["linear", "dense", "conv"]), default="linear", show_default=True
)
@click.option(
    "--latent", type=click.IntRange(1, 65_536), help="code size (default: 30 % of window x signals)"
)
@click.option(
    "--train-rows", type=click.IntRange(1, 10**12), help="first N rows train, the rest validates"
)
@click.option(
    "--train-fraction",
    type=click.FloatRange(0.05, 0.95),
    default=0.9,
    show_default=True,
    help="share of rows that train (when --train-rows is not given)",
)
@click.option("--target-fap", type=FAP_RANGE, default=TARGET_FAP, show_default=True)
@click.option("--epochs", type=click.IntRange(1, 10_000), default=60, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--sources",
    default="*",
    show_default=True,
    help="comma-separated glob patterns of the sources this model serves",
)
@click.option(
    "--search",
    is_flag=True,
    help="with labels: search window, smoothing and threshold for the best F1",
)
@click.option(
    "--force",
    is_flag=True,
    help="write into an existing --out directory that holds no model (a model directory is "
    "replaced without it: that is a retrain)",
)
def train(
    data: Path,
    out: Path,
    window: int,
    stride: int,
    kind: str,
    latent: int | None,
    train_rows: int | None,
    train_fraction: float,
    target_fap: float,
    epochs: int,
    seed: int,
    sources: str,
    search: bool,
    force: bool,
    **reading: Any,
) -> None:
    """Train a windowed autoencoder on a CSV; write model.onnx, model.json and plots.

    \b
    Examples:
      anomstream train plant.csv --out models/pumps --sources 'pump-*'
      anomstream train valve1.csv --out models/valve --sep ";" --label-col anomaly --search
    """
    problem = train_out_problem(out, force)
    if problem:
        raise click.ClickException(problem)
    table = load_csv(data, **reading)
    console = Console(stderr=True)
    if (out / "model.json").is_file():
        console.print(f"[dim]retraining: the model in {out} is replaced when training succeeds")
    console.print("[dim]importing TensorFlow...[/]")
    try:
        from training.train import TrainError, TrainOptions
        from training.train import train as run
    except ImportError as exc:
        raise click.ClickException(
            f"training needs the train extra ({exc.name} is missing): "
            "pip install 'anomstream[train]'"
        ) from None

    options = TrainOptions(
        window=window,
        stride=stride,
        kind=kind,
        latent=latent,
        train_rows=train_rows,
        train_fraction=train_fraction,
        target_fap=target_fap,
        epochs=epochs,
        seed=seed,
        sources=names(sources) or ("*",),
        name=out.name,
        search=search,
    )
    columns = (
        TextColumn("training"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} epochs  {task.fields[loss]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("train", total=epochs, loss="")

        def progress(epoch: int, total: int, logs: dict[str, float]) -> None:
            nan = float("nan")
            loss = f"loss {logs.get('loss', nan):.4f} val {logs.get('val_loss', nan):.4f}"
            bar.update(task, completed=epoch, loss=loss)

        try:
            done = run(table, out, options, progress, warn=lambda m: console.print(f"[yellow]{m}"))
        except (TrainError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    spec = done.spec
    click.echo(
        f"model {spec.label} -> {out}: {len(spec.signals)} signals, window {spec.window}, "
        f"{done.history and len(done.history['loss'])} epochs, "
        f"threshold {spec.info['threshold']:.4g} at target_fap {spec.info['target_fap']:g}, "
        f"onnx parity {done.parity:.1e}, {done.seconds:.1f} s"
    )
    if done.search:
        click.echo(f"search: {done.search}")


def train_out_problem(out: Path, force: bool) -> str | None:
    """Why `train` must not write `out`, checked before TensorFlow loads: a file, or a directory
    that holds files but no model (unless `force`). A model directory is replaced: a retrain,
    which a worker serving it picks up live (the new model is moved in only when it is done)."""
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file: train writes a model directory there"
    if force or not out.is_dir() or (out / "model.json").is_file() or not any(out.iterdir()):
        return None
    return (
        f"--out {out} holds files but no model (no model.json): pick a new directory, or add "
        "--force to write the model into this one"
    )


def _refuse_existing(force: bool, *paths: Path | None) -> None:
    """Outputs the user has are not overwritten without --force (checked before the scoring)."""
    for path in paths:
        if path is not None and path.exists() and not force:
            raise click.ClickException(f"{path} exists: add --force to overwrite it")


def _model_and_data(
    model: Path,
    data: Path,
    target_fap: float | None,
    reading: dict[str, Any],
    drop_model: bool | None = None,
) -> tuple[Any, Table, Any]:
    """The model directory (None when dropped), the CSV and the scoring configuration
    (`target_fap`: the flag, else the model's own). `drop_model`: detect's flag; evaluate has
    none (None) and always needs the model."""
    from detectors.autoencoder import OnnxAutoencoder

    try:
        served = OnnxAutoencoder.load(model)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None
    table = load_csv(data, **reading)
    chosen = target_fap or served.spec.info.get("target_fap", TARGET_FAP)
    config = ScoringConfig(target_fap=chosen)
    return (served if _fits(served, table, data, drop_model) else None), table, config


def _fits(served: Any, table: Table, data: Path, drop_model: bool | None) -> bool:
    """Whether the file holds values of every signal the model reads. A model missing a signal
    never judges a window: the scores would say `model` and carry no model score. So stop, or
    with --drop-model warn and score with the univariate detectors only."""
    wanted = served.spec.signals
    have = [n for i, n in enumerate(table.signals) if not np.isnan(table.values[:, i]).all()]
    missing = [s for s in wanted if s not in have]
    if not missing:
        return True
    what = (
        f"{data.name} lacks the model's signal(s) {', '.join(missing)} (model {served.label} "
        f"reads {', '.join(wanted)}; the file has {', '.join(have) or 'none with values'})"
    )
    if drop_model:
        warn(f"{what}: scoring without the model (--drop-model): no model score, no `model`")
        return False
    fix = "rename the columns or pick them with --signals"
    if drop_model is not None:
        fix += ", or pass --drop-model to score with the univariate detectors only"
    raise click.ClickException(f"{what}: {fix}")


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@csv_options
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="directory for metrics.json and plots (default: MODEL/evaluation)",
)
@click.option(
    "--from-row",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="score every row, count only these onwards (e.g. after the training rows)",
)
@click.option("--force", is_flag=True, help="overwrite the report in an existing --out")
@click.option("--target-fap", type=FAP_RANGE, help="false-alarm probability (default: the model's)")
@click.option("--rules", type=click.Path(path_type=Path), help="also judge validation rules")
def evaluate(
    model: Path,
    data: Path,
    out: Path | None,
    from_row: int,
    target_fap: float | None,
    force: bool,
    rules: Path | None,
    **reading: Any,
) -> None:
    """Score a labelled CSV like the stream would; write metrics.json and plots (into
    MODEL/evaluation, replaced each time, or a named --out).

    \b
    Examples:
      anomstream evaluate models/pumps labelled.csv --label-col anomaly --culprit-col culprit
      anomstream evaluate models/pumps labelled.csv --from-row 5000 --out eval-5000
      anomstream evaluate models/pumps labelled.csv --rules rules.toml   # + each rule's figures
    """
    if out is not None and out.exists() and not out.is_dir():
        raise click.ClickException(f"--out {out} is a file: evaluate writes a directory there")
    _refuse_existing(force, None if out is None else out / "metrics.json")
    try:
        from training.evaluate import evaluate as run
        from training.evaluate_summary import summary_lines
    except ImportError as exc:
        raise click.ClickException(
            f"evaluate draws plots with matplotlib ({exc.name} is missing): "
            "pip install 'anomstream[train]'"
        ) from None

    book = None if rules is None else RuleBook.from_file(rules)
    served, table, config = _model_and_data(model, data, target_fap, reading)
    try:
        result = run(table, served, config, out or model / "evaluation", from_row, book)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for line in summary_lines(result.report, served.label, data.name, out or model / "evaluation"):
        click.echo(line)


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@csv_options
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="scores.csv or scores.jsonl (one row per input row; CSV rows name their event)",
)
@click.option(
    "--events",
    "events_out",
    type=click.Path(path_type=Path),
    help="the anomaly events, one JSON per line as the stream publishes them (default: "
    "scores.events.jsonl for --out scores.jsonl; for a .csv --out, written only when given); "
    "the episode messages go beside them (scores.episodes.jsonl, events.episodes.jsonl)",
)
@click.option(
    "--drop-model",
    is_flag=True,
    help="when the file lacks a signal of the model: warn and score with the univariate "
    "detectors only (default: stop)",
)
@click.option("--force", is_flag=True, help="overwrite --out and the events file if they exist")
@click.option("--target-fap", type=FAP_RANGE, help="false-alarm probability (default: the model's)")
@click.option("--rules", type=click.Path(path_type=Path), help="validation rules (docs/rules.md)")
def detect(
    model: Path,
    data: Path,
    out: Path,
    events_out: Path | None,
    target_fap: float | None,
    drop_model: bool,
    force: bool,
    rules: Path | None,
    **reading: Any,
) -> None:
    """Score a CSV offline with the stream's code path (suite + autoencoder + fusion), and
    raise the events the stream would: score messages (JSONL) or rows (CSV, with `event`,
    `severity`, `episode`, `culprit` columns), the event messages in --events and the
    episode messages beside them.

    \b
    Examples:
      anomstream detect models/pumps new.csv --out scores.jsonl   # + .events, .episodes
      anomstream detect models/pumps new.csv --out scores.csv --events events.jsonl
    """
    from detectors.messages import score_message
    from detectors.offline import episodes, events, flat_rows, score_records, scorer_for

    events_out = _events_path(out, events_out)
    told = None if events_out is None else _episodes_path(events_out)
    _refuse_existing(force, out, events_out, told)
    served, table, config = _model_and_data(model, data, target_fap, reading, drop_model)
    scorer = scorer_for(served, config, rules=None if rules is None else RuleBook.from_file(rules))
    scored = score_records(scorer, table.records())
    found = events(scored, config)  # the processor's: same function, same arguments
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".jsonl":
        with out.open("wb") as handle:
            for res in scored:
                handle.write(orjson.dumps(score_message(res, config)) + b"\n")
    else:
        rows = list(flat_rows(scored, scorer, found))
        fields = list(dict.fromkeys(key for row in rows for key in row))
        with out.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    written = ""
    if events_out is not None:
        events_out.parent.mkdir(parents=True, exist_ok=True)
        with events_out.open("wb") as handle:
            for event in found.values():
                handle.write(orjson.dumps(event) + b"\n")
        written = f", events -> {events_out}"
    if told is not None:
        told.write_bytes(b"".join(orjson.dumps(m) + b"\n" for m in episodes(scored)))
        written += f", episodes -> {told}"
    flagged = sum(r.is_anomaly for r in scored)
    label = "the univariate detectors only" if served is None else served.label
    click.echo(
        f"{len(scored)} rows scored with {label}, {len(found)} events "
        f"({flagged} anomalous records) -> {out}{written}"
    )
    if scored and all(r.warming_up for r in scored):
        warn(
            "every record was still warming up, so none could be anomalous: the detectors "
            f"learn each signal from its first {config.warmup} or so values (a short file, or a "
            "signal that is not one, such as a label column, keeps them warming)"
        )


def _episodes_path(events_out: Path) -> Path:
    """Beside the events: `x.events.jsonl` -> `x.episodes.jsonl`, `e.jsonl` -> `e.episodes...`."""
    return events_out.with_name(f"{events_out.stem.removesuffix('.events')}.episodes.jsonl")


def _events_path(out: Path, given: Path | None) -> Path | None:
    """Where `detect` writes the events: --events, else beside a JSONL --out (a CSV --out
    already names each row's event); checked before any scoring."""
    if out.suffix not in {".csv", ".jsonl"}:
        raise click.ClickException(f"--out must end in .csv or .jsonl, not {out.name!r}")
    if given is None:
        return out.with_name(f"{out.stem}.events.jsonl") if out.suffix == ".jsonl" else None
    if given.suffix != ".jsonl":
        raise click.ClickException(f"--events must end in .jsonl, not {given.name!r}")
    if given.resolve() == out.resolve():
        raise click.ClickException(f"--events {given} must be another file, not --out")
    return given
