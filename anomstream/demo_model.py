"""The demo's autoencoder: trained once on the synthetic plant running normally, then cached.

`anomstream demo` serves it to every pump, so the summary can show the one anomaly no
univariate detector is built for: current that stops following flow (a correlation break).
Training needs the `train` extra (TensorFlow); without it the demo runs with the univariate
suite alone and says so.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from rich.console import Console

from anomstream.plant import SIGNALS, Plant, iso
from detectors.autoencoder import OnnxAutoencoder
from detectors.model_spec import ModelError

MODEL_NAME = "plant"
RECIPE = "plant-v2"
"""Bump when the plant or the recipe changes: the cached model is retrained."""
TRAIN_SECONDS = 300.0
"""Simulated seconds of normal running to learn from (30,000 records of one pump)."""


def demo_model(cache: Path, seed: int, console: Console) -> Path | None:
    """The models folder holding the demo's model (trained now if not cached), or None."""
    root = cache / RECIPE / f"seed-{seed}"
    directory = root / MODEL_NAME
    try:
        OnnxAutoencoder.load(directory)
        console.print(f"[dim]using the cached demo model in {directory}[/]")
        return root
    except ModelError:
        pass
    try:
        from training.train import TrainOptions, train
    except ImportError:
        console.print("[yellow]TensorFlow is not installed: the demo runs without autoencoder[/]")
        return None
    from detectors.csvdata import read_table

    console.print("[dim]training the demo's autoencoder on the plant running normally...[/]")
    plant = Plant(sources=1, rate=100.0, duration=TRAIN_SECONDS, seed=seed + 1000, inject=False)
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "plant.csv"
        with data.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["timestamp", *SIGNALS])
            for ts, _, values in plant.generate(1_795_514_400.0):
                writer.writerow([iso(ts), *(values[s] for s in SIGNALS)])
        options = TrainOptions(stride=2, sources=("pump-*",), name=MODEL_NAME)
        done = train(read_table(data), directory, options)
    console.print(f"[dim]demo model {done.spec.label} trained in {done.seconds:.0f} s[/]")
    return root
