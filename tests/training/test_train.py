"""Training: Keras really trains, the ONNX export computes what Keras computes, the model
directory describes itself, and files it cannot use get one line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnxruntime as ort
import orjson
import pytest

from detectors.autoencoder import OnnxAutoencoder
from detectors.csvdata import read_table
from detectors.model_spec import Scoring
from tests.anomstream.test_cli import anomstream
from tests.coupled import coupled, write_csv, zero_crossing
from training import model as nets
from training.train import TrainError, TrainOptions, train


@pytest.mark.parametrize("kind", ["linear", "dense", "conv"])
def test_onnxruntime_computes_what_keras_computes(kind: str, tmp_path: Path) -> None:
    nets.set_seed(0)
    rng = np.random.default_rng(0)
    net = nets.build(kind, 16, 5)
    data = rng.standard_normal((128, 16, 5)).astype(np.float32)
    net.fit(data, data, epochs=2, verbose=0)
    nets.export_onnx(net, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    probe = rng.standard_normal((64, 16, 5)).astype(np.float32) * 3
    (served,) = session.run(None, {session.get_inputs()[0].name: probe})
    assert np.max(np.abs(served - nets.predict(net, probe))) < 1e-5


def test_the_model_directory_describes_itself(model_dir: Path) -> None:
    for name in (
        "model.onnx",
        "model.json",
        "training_loss.png",
        "result.png",
        "signal_errors.png",
    ):
        assert (model_dir / name).stat().st_size > 1000, name
    spec = orjson.loads((model_dir / "model.json").read_bytes())
    assert spec["name"] == "coupled"
    assert len(spec["version"]) == 8
    assert spec["signals"] == ["a", "b", "c"]
    assert spec["window"] == 16
    data = Path(spec["training"]["data"])
    assert spec["training"]["data_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert spec["training"]["train_rows"] + spec["training"]["validation_rows"] == 1600
    assert {"tensorflow-cpu", "keras", "onnxruntime", "numpy"} <= set(spec["versions"])
    assert spec["threshold"] > spec["calibration"]["anchor"]
    assert spec["created"]
    # the threshold it reports is the calibrated statistic at its target_fap
    served = OnnxAutoencoder.load(model_dir)
    assert served.spec.calibration.p(np.array([spec["threshold"]]))[0] == pytest.approx(
        spec["target_fap"]
    )


def test_the_calibration_holds_on_fresh_normal_data(model_dir: Path) -> None:
    from detectors.autoencoder import sequence_scores

    served = OnnxAutoencoder.load(model_dir)
    p, _ = sequence_scores(served, coupled(20_000, seed=11))
    p = p[np.isfinite(p)]
    # a calibration from ~460 held-out windows: the rate at 1 % within a factor of 3
    assert 0.01 / 3 <= np.mean(p <= 0.01) <= 0.01 * 3


def test_same_data_and_seed_give_the_same_model(tmp_path: Path) -> None:
    data = read_table(write_csv(tmp_path / "d.csv", coupled(500, seed=2)))
    options = TrainOptions(window=8, kind="dense", epochs=3)
    one = train(data, tmp_path / "one", options)
    two = train(data, tmp_path / "two", options)
    assert one.spec.version == two.spec.version
    other = train(data, tmp_path / "three", TrainOptions(window=8, kind="dense", epochs=3, seed=1))
    assert other.spec.version != one.spec.version
    # built aside and moved in: nothing left behind next to the model directories
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "one", "three", "two"]


def test_a_file_with_several_sources_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", coupled(300, seed=2))
    lines = path.read_text().splitlines()
    lines = [lines[0] + ",source"] + [f"{line},pump-{i % 2}" for i, line in enumerate(lines[1:])]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TrainError, match="holds 2 sources"):
        train(read_table(path), tmp_path / "m", TrainOptions(window=8, kind="dense", epochs=1))
    assert not (tmp_path / "m").exists()


def test_constant_signals_are_dropped_with_a_warning(tmp_path: Path) -> None:
    values = coupled(500, seed=3)
    values[:, 2] = 5.0
    warnings: list[str] = []
    done = train(
        read_table(write_csv(tmp_path / "d.csv", values)),
        tmp_path / "m",
        TrainOptions(window=8, kind="dense", epochs=2),
        warn=warnings.append,
    )
    assert done.spec.signals == ("a", "b")
    assert done.dropped == ["c"]
    assert any("'c' is constant" in w for w in warnings)


def test_search_with_labels_records_its_choice(tmp_path: Path) -> None:
    brk = zero_crossing(700)
    labels = np.zeros(900, dtype=int)
    labels[brk:] = 1
    table = read_table(
        write_csv(tmp_path / "d.csv", coupled(900, seed=4, break_at=brk), labels),
        label_col="anomaly",
    )
    done = train(
        table,
        tmp_path / "m",
        TrainOptions(window=8, kind="dense", epochs=8, train_rows=500, search=True),
    )
    chosen = done.search
    assert chosen["window"] in (4, 8, 16)
    assert chosen["alpha"] in (1.0, 0.5, 0.2, 0.1)
    assert chosen["validation_f1"] > 0.5
    spec = orjson.loads((tmp_path / "m" / "model.json").read_bytes())
    assert spec["search"] == chosen
    assert spec["window"] == chosen["window"]
    assert spec["scoring"] == {
        "span": chosen["window"],
        "aggregate": "mean",
        "alpha": chosen["alpha"],
        "norm": "l1",
    }
    assert Scoring(**spec["scoring"]).alpha == chosen["alpha"]


def test_too_few_rows_is_a_clear_error(tmp_path: Path) -> None:
    table = read_table(write_csv(tmp_path / "d.csv", coupled(60, seed=5)))
    with pytest.raises(TrainError, match="too few"):
        train(table, tmp_path / "m", TrainOptions(window=32))


@pytest.mark.parametrize(
    ("content", "flags", "needle"),
    [
        ("timestamp,name\n2026-01-01 00:00:00,x\n", [], "no numeric column"),
        ("timestamp\n2026-01-01 00:00:00\n", [], "no signal columns"),
        (None, ["--label-col", "nope"], "label column 'nope' not in the header"),
        (None, ["--window", "64"], "too few"),
    ],
)
def test_train_gives_one_line_for_a_file_it_cannot_use(
    tmp_path: Path, content: str | None, flags: list[str], needle: str
) -> None:
    data = tmp_path / "d.csv"
    if content is None:
        write_csv(data, coupled(100, seed=6))
    else:
        data.write_text(content)
    done = anomstream("train", str(data), "--out", str(tmp_path / "m"), *flags)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert needle in last, done.stderr
    assert "Traceback" not in done.stderr
