"""`anomstream train` says only what we mean it to (issue 26): no TensorFlow, absl, oneDNN,
CUDA, protobuf or onnxruntime start-up noise on stderr, while our own warnings still show."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

NOISE = [
    r"absl",  # "WARNING: All log messages before absl::InitializeLog() ...", "WARNING:absl:..."
    r"^[IWEF]\d{4} [\d:. ]+\d+ \S+\.(cc|h):\d+\]",  # C++ logs: "I0000 00:00:17.96 123 port.cc:153]"
    r"oneDNN",
    r"(?i)\bcuda\b|cuInit|TF-TRT|TensorRT",
    r"cpu_feature_guard|rebuild TensorFlow",
    r"(?i)protobuf",
    r"\.py:\d+: \w*Warning",  # a Python warning, as `warnings` prints it
    r"^WARNING:(tensorflow|keras|tf2onnx)",
    r"\[[WE]:onnxruntime",
    r"tensorflow/|tf2onnx",
]


def write_sines(path: Path, rows: int = 300) -> Path:
    """A few hundred rows of three sines, and a constant column (our warning drops it)."""
    t = np.arange(rows)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["ts", "a", "b", "c", "flat"])
        for i in t.tolist():
            out.writerow([1_700_000_000 + i, np.sin(i / 7), np.cos(i / 11), np.sin(i / 5), 1.0])
    return path


def noise(lines: list[str]) -> list[str]:
    return [line for line in lines if any(re.search(p, line) for p in NOISE)]


def test_the_noise_patterns_catch_what_tensorflow_printed() -> None:
    """The list catches the lines seen before the fix (so its silence below means something)."""
    seen = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796634581.546699   13730 port.cc:153] oneDNN custom operations are on.",
        "I0000 00:00:1796635313.023944   29554 cpu_feature_guard.cc:227] This TensorFlow binary",
        "W0000 00:00:1.5 77 cuda_executor.cc:1228] could not find cuda drivers on your machine",
        "/x/site-packages/google/protobuf/runtime_version.py:98: UserWarning: Protobuf gencode",
        "WARNING:absl:You are saving your model as an HDF5 file",
    ]
    assert noise(seen) == seen
    ours = ["importing TensorFlow...", "signal 'flat' is constant in the training part: dropped"]
    assert noise(ours) == []


def test_train_prints_no_third_party_noise(tmp_path: Path) -> None:
    data = write_sines(tmp_path / "sines.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}  # our defaults only
    env["COLUMNS"] = "200"  # one warning, one line
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "anomstream",
            "train",
            str(data),
            "--out",
            str(tmp_path / "m"),
            "--epochs",
            "1",
            "--window",
            "4",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert noise(lines) == [], run.stderr
    assert any("'flat' is constant" in line for line in lines), run.stderr  # ours still shows
    assert (tmp_path / "m" / "model.onnx").is_file()
