"""SKAB's files, and one file trained and scored under each recipe of a small grid.

A recipe is what `anomstream train` fixes besides the threshold: the network (kind, window) and
how its error is read (the smoothing `alpha`, the widening `inflate`). A network is fitted once
per (kind, window) and file; the reading knobs only recalibrate the exported network (the same
`training.calibrate` step `train` runs), so each costs one re-scoring (~0.2 s a file), not a fit
(~6 s). Scores are kept as p-values per row, so every `target_fap` is a re-thresholding.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import click
import numpy as np

from detectors.autoencoder import OnnxAutoencoder
from detectors.csvdata import Table, read_table
from detectors.engine import ScoringConfig
from detectors.model_spec import MODEL_FILE
from detectors.offline import score_records, scorer_for
from training.metrics import Confusion, confusion
from training.options import TrainOptions

TRAIN_ROWS = 400


@dataclass(frozen=True, slots=True)
class Recipe:
    """The training knobs the benchmark varies (the rest are `TrainOptions`' defaults)."""

    kind: str
    window: int
    alpha: float
    inflate: float

    @classmethod
    def default(cls) -> Recipe:
        o = TrainOptions()
        return cls(o.kind, o.window, o.alpha, o.inflate)

    @property
    def fit(self) -> tuple[str, int]:
        return self.kind, self.window

    @property
    def label(self) -> str:
        return f"{self.kind} w{self.window} a{self.alpha:g} x{self.inflate:g}"

    def options(self, target_fap: float, seed: int) -> TrainOptions:
        return TrainOptions(
            name="skab",
            kind=self.kind,
            window=self.window,
            alpha=self.alpha,
            inflate=self.inflate,
            target_fap=target_fap,
            seed=seed,
        )


DEFAULT = Recipe.default()
ALPHAS = (DEFAULT.alpha, 0.1, 0.5, 1.0)
INFLATES = (DEFAULT.inflate, 1.0, 1.3, 2.0, 2.5)
"""The readings tried of every network: 20, each one re-scoring (~3 s for the 16 files)."""
GRID_FITS = ((DEFAULT.kind, DEFAULT.window), ("linear", 5), ("linear", 20), ("dense", 10))
"""Networks `--grid` fits besides the default one (~1.5 min each on 2 cores)."""


def grid(fits: Sequence[tuple[str, int]]) -> list[Recipe]:
    """Every reading of every network, the default recipe first (it wins ties)."""
    out = [DEFAULT]
    for kind, window in fits:
        for alpha in ALPHAS:
            for inflate in INFLATES:
                recipe = Recipe(kind, window, alpha, inflate)
                if recipe not in out:
                    out.append(recipe)
    return out


def valve_files(root: Path) -> list[Path]:
    folder = root / "skab" / "data" / "valve1"
    files = sorted(
        folder.glob("*.csv"),
        key=lambda p: (0, int(p.stem), "") if p.stem.isdigit() else (1, 0, p.name),
    )
    if not files:
        raise FileNotFoundError(f"no SKAB valve1 files in {folder}")
    return files


def read_file(path: Path) -> Table:
    """One labelled SKAB file, or a one-line error naming it (a benchmark never ends with a
    traceback: a bad file is the user's data, not our bug)."""
    try:
        table = read_table(path, label_col="anomaly", ignore=("changepoint",))
    except (ValueError, OSError) as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    if len(table) <= TRAIN_ROWS + 1:
        raise click.ClickException(
            f"{path}: {len(table)} rows; SKAB's protocol trains on the first {TRAIN_ROWS} and "
            "scores the rest"
        )
    return table


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


@dataclass(frozen=True, slots=True)
class Scores:
    """One file's test part (rows after TRAIN_ROWS) under one recipe, as p-values."""

    truth: np.ndarray
    fused: np.ndarray
    """The stream's record p (suite + autoencoder); 1 while warming up (never an alarm)."""
    model: np.ndarray
    """The autoencoder's own p; 1 where it gave no verdict."""

    def fused_at(self, target_fap: float) -> Confusion:
        return confusion(self.truth, self.fused <= target_fap)

    def model_at(self, target_fap: float) -> Confusion:
        return confusion(self.truth, self.model <= target_fap)


def score(table: Table, model: OnnxAutoencoder) -> Scores:
    """Every row through the stream's scorer in order; the training rows warm the suite."""
    scored = score_records(scorer_for(model, ScoringConfig()), table.records())[TRAIN_ROWS:]
    assert table.labels is not None  # read_file asks for the label column
    return Scores(
        table.labels[TRAIN_ROWS:],
        np.array([1.0 if r.warming_up else r.p for r in scored]),
        np.array([1.0 if r.model_p is None else r.model_p for r in scored]),
    )


Fitted = Callable[[Table, Path, TrainOptions], Path]
"""Train on a table into a directory, return it (`training.train.train`, wrapped)."""


def readings(
    table: Table, directory: Path, recipes: Sequence[Recipe], seed: int
) -> Iterator[tuple[Recipe, OnnxAutoencoder]]:
    """The network in `directory` read under each recipe (same fit: kind and window), by the
    calibration step `train` runs, so the default reading is exactly the trained model."""
    from training.calibrate import calibrate, draft_spec
    from training.dataset import prepare

    for recipe in recipes:
        options = recipe.options(TrainOptions().target_fap, seed)
        data = prepare(head(table, TRAIN_ROWS), options, lambda _: None)
        draft = OnnxAutoencoder.open(
            draft_spec(data, options, np.ones(len(data.signals))), directory / MODEL_FILE
        )
        yield recipe, draft.with_spec(calibrate(data, options, draft))


@dataclass(slots=True)
class FileRun:
    """One file under every recipe of the grid."""

    scores: dict[Recipe, Scores]
    model: OnnxAutoencoder
    """The default recipe's model (the cost figures are measured on it)."""
    model_bytes: int
    fit_seconds: float
    """Time spent fitting the default network (what `anomstream train` costs)."""


def run_file(table: Table, recipes: Sequence[Recipe], seed: int, fit: Fitted) -> FileRun:
    """Fit each network of `recipes` once on the file's head and score the file under every
    reading of it."""
    scores: dict[Recipe, Scores] = {}
    run: FileRun | None = None
    fits = list(dict.fromkeys(r.fit for r in recipes))
    with tempfile.TemporaryDirectory() as scratch:
        for kind, window in fits:
            mine = [r for r in recipes if r.fit == (kind, window)]
            started = time.monotonic()
            directory = fit(
                head(table, TRAIN_ROWS),
                Path(scratch) / f"{kind}-{window}",
                mine[0].options(TrainOptions().target_fap, seed),
            )
            seconds = time.monotonic() - started
            for recipe, model in readings(table, directory, mine, seed):
                scores[recipe] = score(table, model)
            if DEFAULT in mine:
                size = (directory / MODEL_FILE).stat().st_size
                run = FileRun(scores, OnnxAutoencoder.load(directory), size, seconds)
    assert run is not None, "the default recipe is always in the grid"
    return run
