"""One bad model must not take the group down (issue 30, item 2): a graph that loads but fails
at run time is refused by a trial inference when it is loaded, and a model that fails later,
inside a batch, is quarantined while the batch is scored without it."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from detectors.autoencoder import OnnxAutoencoder
from detectors.engine import Scorer, ScoringConfig
from detectors.model_spec import ModelError, read_spec
from detectors.models import ModelBook
from detectors.offline import score_records
from detectors.records import Record


def graph_bytes(window: int, k: int, kind: str) -> bytes:
    """A graph whose ports have the shape model.json asks for, but that fails when run:
    `reshape` doubles the window in a Reshape (the element count cannot match), `dtype`
    declares float64 input where the server feeds float32."""
    elem = TensorProto.DOUBLE if kind == "dtype" else TensorProto.FLOAT
    x = helper.make_tensor_value_info("x", elem, ["N", window, k])
    y = helper.make_tensor_value_info("y", elem, ["N", window, k])
    if kind == "dtype":
        nodes = [helper.make_node("Identity", ["x"], ["y"])]
        inits = []
    else:
        nodes = [
            helper.make_node("Shape", ["x"], ["s"]),
            helper.make_node("Mul", ["s", "two"], ["bad"]),
            helper.make_node("Reshape", ["x", "bad"], ["y"]),
        ]
        inits = [helper.make_tensor("two", TensorProto.INT64, [3], [1, 2, 1])]
    graph = helper.make_graph(nodes, "bad", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data: bytes = model.SerializeToString()
    return data


@pytest.mark.parametrize("kind", ["reshape", "dtype"])
def test_a_graph_that_fails_at_run_time_is_refused_when_loaded(
    model_dir: Path, tmp_path: Path, kind: str
) -> None:
    spec = read_spec(model_dir)
    bad = tmp_path / kind
    shutil.copytree(model_dir, bad)
    onnx.checker.check_model(graph_bytes(spec.window, len(spec.signals), kind))
    (bad / "model.onnx").write_bytes(graph_bytes(spec.window, len(spec.signals), kind))
    with pytest.raises(ModelError, match="a trial inference fails") as caught:
        OnnxAutoencoder.load(bad)
    assert "\n" not in str(caught.value)
    # in a models folder: reported, and the good model there keeps serving
    root = tmp_path / "models"
    root.mkdir()
    shutil.copytree(model_dir, root / "a")
    book = ModelBook(root)
    assert book.for_source("x") is not None
    shutil.copy(bad / "model.onnx", root / "a" / "model.onnx")
    (root / "a" / "model.json").touch()  # a new description: reloaded, refused
    (root / "a" / "model.json").write_bytes((model_dir / "model.json").read_bytes())
    book.refresh()
    assert "trial inference fails" in book.errors["a"]
    assert book.for_source("x") is not None  # the previous version still serves


def test_a_model_that_fails_inside_a_batch_is_dropped_and_the_batch_scored_without_it(
    model_dir: Path,
) -> None:
    spec = read_spec(model_dir)
    session = ort.InferenceSession(
        graph_bytes(spec.window, len(spec.signals), "reshape"), providers=["CPUExecutionProvider"]
    )
    broken = OnnxAutoencoder(replace(spec, sources=("*",)), session)  # unchecked: fails later
    book = ModelBook(None, [broken])
    config = ScoringConfig()
    rng = np.random.default_rng(0)
    values = rng.normal(0.0, 1.0, (300, len(spec.signals)))
    records = [
        Record("s", 1e9 + i, f"t{i}", dict(zip(spec.signals, row.tolist(), strict=True)))
        for i, row in enumerate(values)
    ]
    with_model = score_records(Scorer(config, models=book), records)  # no exception
    alone = score_records(Scorer(config), records)
    assert [r.p for r in with_model] == [r.p for r in alone]
    assert all(r.model is None for r in with_model)
    assert book.models == {}
    assert book.quarantined == {spec.name: 1}
    assert book.errors[spec.name].startswith("quarantined: inference fails")
