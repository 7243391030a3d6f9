"""Session-wide test settings: say which broker lane runs, in the report header."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.brokers import KAFKA_VERSION, TANSU_VERSION
from tests.coupled import coupled, write_csv

MODEL_WINDOW = 16


def pytest_report_header() -> str:
    lane = os.environ.get("ANOMSTREAM_TEST_BROKER", "tansu")
    name = {"kafka": f"Apache Kafka {KAFKA_VERSION} (KRaft)", "tansu": f"Tansu {TANSU_VERSION}"}
    return f"anomstream broker lane: {name.get(lane, lane)}"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small autoencoder really trained (Keras), exported (ONNX) and calibrated, once per run.

    Tests that only serve it (detectors, streams) never import TensorFlow themselves.
    """
    from detectors.csvdata import read_table
    from training.train import TrainOptions, train

    root = tmp_path_factory.mktemp("models")
    data = write_csv(root / "coupled.csv", coupled(1600, seed=1))
    # inflate 1: this data is stationary, so the calibration can be checked as it is
    options = TrainOptions(
        window=MODEL_WINDOW, kind="dense", epochs=40, train_fraction=0.7, inflate=1.0
    )
    train(read_table(data), root / "coupled", options)
    return root / "coupled"
