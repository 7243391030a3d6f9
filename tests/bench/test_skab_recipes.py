"""The SKAB grid: the default recipe leads, and re-reading a fitted network under a recipe gives
the very model `train` made for it (so the in-sample figure is the product's own)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.skab.recipes import (
    DEFAULT,
    GRID_FITS,
    TRAIN_ROWS,
    Recipe,
    grid,
    head,
    readings,
    score,
    valve_files,
)
from detectors.csvdata import read_table
from tests.coupled import coupled, write_csv
from training.options import TrainOptions


def test_the_grid_starts_with_the_default_and_holds_each_recipe_once() -> None:
    recipes = grid(GRID_FITS)
    assert recipes[0] == DEFAULT
    assert len(recipes) == len(set(recipes))
    assert {r.fit for r in recipes} == set(GRID_FITS)
    o = TrainOptions()
    assert (DEFAULT.kind, DEFAULT.window, DEFAULT.alpha, DEFAULT.inflate) == (
        o.kind,
        o.window,
        o.alpha,
        o.inflate,
    )


def test_valve_files_sort_by_number_and_other_names_last(tmp_path: Path) -> None:
    folder = tmp_path / "skab" / "data" / "valve1"
    folder.mkdir(parents=True)
    for name in ("10.csv", "2.csv", "b.csv", "0.csv"):
        (folder / name).write_text("")
    assert [p.name for p in valve_files(tmp_path)] == ["0.csv", "2.csv", "10.csv", "b.csv"]


def test_a_reading_of_the_fitted_network_is_the_model_train_made(tmp_path: Path) -> None:
    from training.train import train

    labels = np.zeros(600, dtype=int)
    labels[500:520] = 1
    table = read_table(
        write_csv(tmp_path / "d.csv", coupled(600, seed=3), labels), label_col="anomaly"
    )
    recipe = Recipe("linear", 8, 0.2, 1.6)
    done = train(head(table, TRAIN_ROWS), tmp_path / "m", recipe.options(1e-3, 0))
    ((same, model), (wider, widened)) = readings(
        table, tmp_path / "m", [recipe, replace(recipe, inflate=2.5)], 0
    )
    assert same == recipe and wider.inflate == 2.5
    assert model.spec.calibration == done.spec.calibration
    np.testing.assert_array_equal(model.spec.error_scale, done.spec.error_scale)
    assert widened.spec.calibration.inflate == 2.5
    scores, wide = score(table, model), score(table, widened)
    assert len(scores.truth) == len(scores.fused) == 600 - TRAIN_ROWS
    assert scores.truth.sum() == 20
    # a wider reading of the same errors never makes the model's p smaller
    assert np.all(wide.model >= scores.model - 1e-12)
    assert np.any(wide.model > scores.model)
