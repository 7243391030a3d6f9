"""`anomstream detect` and `evaluate`: a trained model over a CSV, with the stream's code path."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import orjson
import pytest

from detectors.autoencoder import OnnxAutoencoder
from detectors.csvdata import read_table
from detectors.engine import ScoringConfig
from detectors.offline import score_records, scorer_for
from tests.anomstream.test_cli import anomstream
from tests.coupled import coupled, write_csv, zero_crossing
from tests.schemas import check


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """900 rows with a labelled correlation break, plus a text column that is not a signal."""
    brk = zero_crossing(600)
    labels = np.zeros(900, dtype=int)
    labels[brk:] = 1
    path = write_csv(
        tmp_path_factory.mktemp("data") / "broken.csv", coupled(900, seed=9, break_at=brk), labels
    )
    lines = path.read_text().splitlines()
    lines = [lines[0] + ",site"] + [line + ",north" for line in lines[1:]]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_detect_writes_one_row_per_input_row_as_the_stream_scores_it(
    model_dir: Path, broken: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scores.jsonl"
    done = anomstream("detect", str(model_dir), str(broken), "--out", str(out))
    assert done.returncode == 0, done.stderr
    messages = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(messages) == 900
    for msg in messages[::97]:
        check("score", msg)
    # the same numbers as the stream's scorer fed the same records
    model = OnnxAutoencoder.load(model_dir)
    table = read_table(broken)
    assert table.signals == ("a", "b", "c")  # `site` is text, `anomaly` the label
    direct = score_records(scorer_for(model, ScoringConfig()), table.records())
    assert [m["score"] for m in messages] == [r.score for r in direct]
    assert any(m["is_anomaly"] for m in messages[600:])

    flat = tmp_path / "scores.csv"
    done = anomstream("detect", str(model_dir), str(broken), "--out", str(flat))
    assert done.returncode == 0, done.stderr
    with flat.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 900
    assert float(rows[700]["score"]) == pytest.approx(messages[700]["score"])
    assert {"b.value", "b.expected", "b.reconstruction", "b.contribution"} <= set(rows[700])


def test_evaluate_reports_metrics_and_plots(model_dir: Path, broken: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    done = anomstream(
        "evaluate", str(model_dir), str(broken), "--label-col", "anomaly", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    report = orjson.loads((out / "metrics.json").read_bytes())
    for part in ("fused", "autoencoder"):
        keys = {"precision", "recall", "f1", "far", "mar", "event_recall", "pr_auc"}
        assert keys <= set(report[part])
    assert report["fused"]["event_recall"] == 1.0
    assert report["fused"]["recall"] > 0.8
    assert report["fused"]["far"] < 0.02
    assert (out / "result.png").stat().st_size > 1000
    assert (out / "signal_errors.png").stat().st_size > 1000
    assert "F1" in done.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["detect", "/nonexistent-model", "DATA", "--out", "x.csv"], "model directory not found"),
        (["detect", "MODEL", "DATA", "--out", "x.txt"], "must end in .csv or .jsonl"),
        (["evaluate", "MODEL", "DATA", "--label-col", "nope"], "label column 'nope'"),
        (["evaluate", "MODEL", "NOLABELS"], "needs labels"),
    ],
)
def test_detect_and_evaluate_errors_are_one_line(
    model_dir: Path, broken: Path, tmp_path: Path, args: list[str], needle: str
) -> None:
    plain = write_csv(tmp_path / "plain.csv", coupled(100, seed=1))
    swap = {"MODEL": str(model_dir), "DATA": str(broken), "NOLABELS": str(plain)}
    done = anomstream(*(swap.get(a, a) for a in args))
    assert done.returncode != 0
    assert needle in done.stderr.strip().splitlines()[-1], done.stderr
    assert "Traceback" not in done.stderr
