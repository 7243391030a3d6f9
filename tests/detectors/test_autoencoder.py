"""Serving the autoencoder: a trained ONNX model in the stream's scorer, without TensorFlow."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

from detectors.autoencoder import OnnxAutoencoder
from detectors.engine import ScoringConfig
from detectors.messages import anomaly_event, score_message
from detectors.model_spec import ErrorCalibration, ModelError, read_spec
from detectors.models import ModelBook
from detectors.offline import score_records, scorer_for
from detectors.records import Record
from detectors.registry import SuiteOptions, default_suite
from detectors.source_state import SourceState
from tests.coupled import SIGNALS, START, coupled, zero_crossing
from tests.schemas import check

CONFIG = ScoringConfig()
NO_RHYTHM = default_suite(SuiteOptions(periods=()))
"""The univariate suite without the seasonal detector, which sees b's phase flip on its own
(see tests/detectors/test_seasonal.py)."""


def records(values: np.ndarray, source: str = "pump-1") -> list[Record]:
    out = []
    for i, row in enumerate(values.tolist()):
        signals: dict[str, float | None] = {
            name: (None if np.isnan(v) else v) for name, v in zip(SIGNALS, row, strict=True)
        }
        out.append(Record(source, START + i, f"t{i}", signals))
    return out


@pytest.fixture(scope="module")
def model(model_dir: Path) -> OnnxAutoencoder:
    return OnnxAutoencoder.load(model_dir)


def test_a_correlation_break_is_found_by_the_model_alone_and_explained(model) -> None:
    brk = zero_crossing(1000)
    recs = records(coupled(1400, seed=2, break_at=brk))
    alone = score_records(scorer_for(None, CONFIG, NO_RHYTHM), recs)
    fused = score_records(scorer_for(model, CONFIG, NO_RHYTHM), recs)
    # every value stays in range: the univariate suite without rhythms sees at most the
    # averages drift a few records later (level_shift); the model sees the break first
    later = [i for i, r in enumerate(alone) if r.is_anomaly]
    assert not later or min(later) >= brk, "false alarm before the break"
    flagged = [i for i, r in enumerate(fused) if r.is_anomaly]
    assert flagged, "the autoencoder missed the correlation break"
    assert min(flagged) >= brk, "false alarm before the break"
    assert min(flagged) - brk <= 10
    assert not later or min(flagged) < min(later), (min(flagged), min(later))
    first = fused[min(flagged)]
    event = anomaly_event(first, CONFIG)
    check("event", event)
    assert event["detectors"] == ["autoencoder"]
    assert event["signals"][0]["name"] == "b"
    message = score_message(first, CONFIG)
    check("score", message)
    assert message["model"] == model.label
    assert message["detectors"]["autoencoder"] >= CONFIG.threshold
    assert sum(s["contribution"] for s in message["signals"].values()) == pytest.approx(1.0)


def test_scores_do_not_depend_on_batching_or_a_restart(model) -> None:
    recs = records(coupled(700, seed=3, break_at=zero_crossing(500)))
    reference = [r.score for r in score_records(scorer_for(model, CONFIG), recs, batch=500)]
    for batch in (1, 37):
        again = [r.score for r in score_records(scorer_for(model, CONFIG), recs, batch=batch)]
        assert again == reference
    scorer = scorer_for(model, CONFIG)
    states: dict[str, SourceState] = {}
    first = scorer.score_batch(recs[:333], states)
    restored = {
        k: SourceState.from_json(orjson.loads(orjson.dumps(v.to_json(scorer.suite))), scorer.suite)
        for k, v in states.items()
    }
    rest = scorer.score_batch(recs[333:], restored)
    assert [r.score for r in first + rest if r is not None] == reference
    window = restored["pump-1"].window
    assert window is not None and window.model == model.label
    assert len(window.rows) == model.spec.window


def test_a_missing_value_is_imputed_flagged_and_not_an_alarm(model) -> None:
    values = coupled(600, seed=4)
    values[450, 1] = np.nan
    values[451:460, 2] = np.nan
    scored = score_records(scorer_for(model, CONFIG), records(values))
    assert scored[450].missing == ["b"]
    assert scored[455].missing == ["c"]
    assert scored[450].model_p is not None
    assert not any(r.is_anomaly for r in scored[440:470])


def test_sources_get_the_model_their_pattern_names(model, tmp_path: Path) -> None:
    root = tmp_path / "models"
    assert model.spec.path is not None
    shutil.copytree(model.spec.path.parent, root / "pumps")
    spec = orjson.loads((root / "pumps" / "model.json").read_bytes())
    spec["sources"] = ["pump-*"]
    (root / "pumps" / "model.json").write_bytes(orjson.dumps(spec))
    book = ModelBook(root)
    assert book.for_source("pump-3") is not None
    assert book.for_source("fan-1") is None
    scorer = scorer_for(None, CONFIG)
    scorer.models = book
    recs = records(coupled(100, seed=5)) + records(coupled(100, seed=6), "fan-1")
    out = [r for r in scorer.score_batch(recs, {}) if r is not None]
    assert {r.model for r in out if r.record.source == "pump-1"} == {model.label}
    assert {r.model for r in out if r.record.source == "fan-1"} == {None}


def test_the_book_picks_up_new_and_removed_models_and_survives_a_broken_one(
    model, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    root.mkdir()
    book = ModelBook(root)
    assert book.for_source("x") is None
    assert model.spec.path is not None
    shutil.copytree(model.spec.path.parent, root / "a")
    assert book.refresh()
    found = book.for_source("x")
    assert found is not None and found.label == model.label
    # a retrain in progress: the network is being rewritten, its description not yet
    (root / "a" / "model.onnx").write_bytes(b"half a network")
    assert not book.refresh()
    still = book.for_source("x")
    assert still is not None and still.label == model.label
    broken = root / "b"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"not onnx")
    (broken / "model.json").write_bytes(b"{}")
    book.refresh()
    assert "b" in book.errors
    assert book.for_source("x") is not None
    shutil.rmtree(root / "a")
    assert book.refresh()
    assert book.for_source("x") is None


def test_a_model_directory_is_checked_when_loaded(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        read_spec(tmp_path / "nope")
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    data = orjson.loads((copy / "model.json").read_bytes())
    data["scaler"]["center"] = [0.0]
    (copy / "model.json").write_bytes(orjson.dumps(data))
    with pytest.raises(ModelError, match=r"scaler\.center"):
        read_spec(copy)
    # a network onnxruntime cannot read, or one of another shape: one line, not a crash
    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    (other / "model.onnx").write_bytes(b"not a network")
    with pytest.raises(ModelError, match="onnxruntime cannot load it"):
        OnnxAutoencoder.load(other)
    data = orjson.loads((model_dir / "model.json").read_bytes())
    data["window"] = data["scoring"]["span"] = 8
    shutil.copy(model_dir / "model.onnx", other / "model.onnx")
    (other / "model.json").write_bytes(orjson.dumps(data))
    with pytest.raises(ModelError, match="has shape"):
        OnnxAutoencoder.load(other)


def test_calibration_reads_tail_probabilities_beyond_the_sample() -> None:
    rng = np.random.default_rng(0)
    sample = rng.exponential(1.0, 5000)
    cal = ErrorCalibration.fit(sample)
    for p in (0.5, 0.1, 1e-2, 1e-3, 1e-5):
        assert cal.p(np.array([cal.threshold(p)]))[0] == pytest.approx(p, rel=1e-6)
    # exponential truth: P(X >= x) = exp(-x); the fitted tail may be heavier (fewer false
    # alarms), never much lighter
    assert 0.95 * np.log(1e3) <= cal.threshold(1e-3) <= 1.25 * np.log(1e3)
    grid = np.linspace(0, 20, 200)
    assert np.all(np.diff(cal.p(grid)) <= 1e-15)
    assert cal.p(np.array([np.nan]))[0] == 1.0
    # inflating widens the normal range by that factor, everywhere
    wide = ErrorCalibration.fit(sample, inflate=1.6)
    for p in (0.5, 1e-2, 1e-4):
        assert wide.threshold(p) == pytest.approx(1.6 * cal.threshold(p))
        assert wide.p(np.array([1.6 * cal.threshold(p)]))[0] == pytest.approx(p, rel=1e-6)


def test_serving_never_imports_tensorflow() -> None:
    code = (
        "import sys; import streams.app, anomstream.cli, detectors.offline, training.evaluate; "
        "bad = [m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules]; "
        "print(*bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
