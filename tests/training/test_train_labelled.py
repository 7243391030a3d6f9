"""Training on real files: labelled anomalies in the training part are left out (windows, scaler)
instead of learnt as normal, and a file with no anomaly-free validation window still trains
(without early stopping, and says so) instead of stopping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from detectors.autoencoder import OnnxAutoencoder
from detectors.csvdata import read_table
from detectors.engine import ScoringConfig
from detectors.offline import score_records, scorer_for
from tests.anomstream.test_cli import anomstream
from tests.coupled import coupled, write_csv
from training.train import TrainError, TrainOptions, train

ROWS = 600
OPTIONS = TrainOptions(window=8, kind="linear", epochs=4)


def labelled_head(tmp_path: Path, head: int = 100) -> Path:
    """The first `head` rows are a labelled fault: every signal 40 units off."""
    values = coupled(ROWS, seed=7)
    values[:head] += 40.0
    labels = np.zeros(ROWS, dtype=int)
    labels[:head] = 1
    return write_csv(tmp_path / "head.csv", values, labels)


def test_a_labelled_head_trains_without_its_anomalous_windows(tmp_path: Path) -> None:
    path = labelled_head(tmp_path)
    table = read_table(path, label_col="anomaly")
    warnings: list[str] = []
    done = train(table, tmp_path / "m", OPTIONS, warn=warnings.append)
    # the scaler is the normal rows': the fault (40 units off) would drag the centre to ~6.7
    normal = table.values[100:540]
    np.testing.assert_allclose(done.spec.center, normal.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(done.spec.scale, normal.std(axis=0), atol=1e-9)
    assert any("100 labelled anomalous rows" in w for w in warnings), warnings
    training = orjson.loads((tmp_path / "m" / "model.json").read_bytes())["training"]
    assert training["labelled_rows_left_out"] == 100
    assert training["early_stopping"] is True
    assert "val_loss" in done.history
    # the model serves: every record after its first window gets the model's verdict
    model = OnnxAutoencoder.load(tmp_path / "m")
    fresh = read_table(write_csv(tmp_path / "fresh.csv", coupled(200, seed=8)))
    scored = score_records(scorer_for(model, ScoringConfig()), fresh.records())
    judged = [r.model_p for r in scored[8:]]
    assert all(p is not None for p in judged)
    assert np.mean([p <= 1e-3 for p in judged if p is not None]) < 0.05


def test_no_clean_validation_window_trains_all_epochs_without_early_stopping(
    tmp_path: Path,
) -> None:
    values = coupled(ROWS, seed=9)
    labels = np.zeros(ROWS, dtype=int)
    labels[530:] = 1  # the whole validation part (the last 10 %), and a little before it
    table = read_table(write_csv(tmp_path / "tail.csv", values, labels), label_col="anomaly")
    warnings: list[str] = []
    done = train(table, tmp_path / "m", OPTIONS, warn=warnings.append)
    assert len(done.history["loss"]) == OPTIONS.epochs
    assert "val_loss" not in done.history
    assert any("without early stopping" in w for w in warnings), warnings
    spec = orjson.loads((tmp_path / "m" / "model.json").read_bytes())
    assert spec["training"]["early_stopping"] is False
    assert spec["training"]["best_val_loss"] is None
    OnnxAutoencoder.load(tmp_path / "m")


def test_a_training_part_that_is_all_anomalous_is_one_clear_error(tmp_path: Path) -> None:
    path = labelled_head(tmp_path, head=540)
    with pytest.raises(TrainError, match="anomaly-free"):
        train(read_table(path, label_col="anomaly"), tmp_path / "m", OPTIONS)
    assert not (tmp_path / "m").exists()


def test_anomstream_train_on_a_file_without_clean_validation_exits_0_and_warns(
    tmp_path: Path,
) -> None:
    values = coupled(ROWS, seed=10)
    labels = np.zeros(ROWS, dtype=int)
    labels[:50] = 1
    labels[540:] = 1
    data = write_csv(tmp_path / "both.csv", values, labels)
    done = anomstream(
        "train", str(data), "--out", str(tmp_path / "m"), "--window", "8", "--epochs", "3"
    )
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())  # the console wraps its lines
    assert "without early stopping" in said
    assert "50 labelled anomalous rows" in said
    assert "Traceback" not in said
    assert (tmp_path / "m" / "model.onnx").is_file()
