"""`anomstream detect` and `evaluate`: a trained model over a CSV, with the stream's code path."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from detectors.autoencoder import OnnxAutoencoder
from detectors.csvdata import read_table
from detectors.engine import ScoringConfig
from detectors.offline import events, score_records, scorer_for
from tests.anomstream.test_cli import anomstream
from tests.coupled import coupled, write_csv, zero_crossing
from tests.detectors.test_offline import positionless, through_processor
from tests.schemas import check

EVENT_COLUMNS = ("event", "severity", "episode", "culprit")


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


@pytest.fixture(scope="module")
def blamed(broken: Path) -> Path:
    """`broken` with a `broke` column naming the signal that broke (b) on the anomalous rows."""
    lines = broken.read_text().splitlines()
    out = [lines[0] + ",broke"]
    out += [line + (",b" if line.split(",")[4] == "1" else ",") for line in lines[1:]]
    path = broken.with_name("blamed.csv")
    path.write_text("\n".join(out) + "\n")
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


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_detect_writes_the_streams_events_beside_the_scores(
    model_dir: Path, broken: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scores.jsonl"
    done = anomstream("detect", str(model_dir), str(broken), "--out", str(out))
    assert done.returncode == 0, done.stderr
    written = read_jsonl(tmp_path / "scores.events.jsonl")  # the default, next to --out
    assert written
    for event in written:
        check("event", event)
    scores = read_jsonl(out)
    flagged = sum(bool(m["is_anomaly"]) for m in scores)
    assert "900 rows scored with coupled-" in done.stdout
    assert f", {len(written)} events ({flagged} anomalous records) -> {out}" in done.stdout

    # exactly the events of `detectors.offline.events`, in order ...
    model = OnnxAutoencoder.load(model_dir)
    config = ScoringConfig(target_fap=model.spec.info["target_fap"])
    table = read_table(broken)
    direct = events(score_records(scorer_for(model, config), table.records()), config)
    assert written == list(direct.values())
    # ... and the processor's for the same records, but for the ids of their input positions
    _, published = through_processor(table.records(), model_dir, tmp_path / "stream")
    assert [positionless(e) for e in written] == [positionless(e) for e in published]

    flat, beside = tmp_path / "scores.csv", tmp_path / "events-too.jsonl"
    done = anomstream(
        "detect", str(model_dir), str(broken), "--out", str(flat), "--events", str(beside)
    )
    assert done.returncode == 0, done.stderr
    with flat.open() as handle:
        rows = list(csv.DictReader(handle))
    assert set(EVENT_COLUMNS) <= set(rows[0])
    assert [r["event"] for r in rows if r["event"]] == [e["id"] for e in written]
    assert read_jsonl(beside) == written
    for row in rows:
        assert bool(row["episode"]) == (row["is_anomaly"] == "1")
        assert bool(row["severity"]) == bool(row["culprit"]) == bool(row["event"])
    by_id = {e["id"]: e for e in written}
    for row in rows:
        if row["event"]:
            event = by_id[row["event"]]
            assert row["severity"] == event["severity"]
            assert row["culprit"] == event["signals"][0]["name"]
            assert row["episode"] == event["episode"]["id"]

    # CSV output without --events writes no events file
    alone = tmp_path / "alone" / "scores.csv"
    done = anomstream("detect", str(model_dir), str(broken), "--out", str(alone))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in alone.parent.iterdir()) == ["scores.csv"]


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
    figures = report["events"]
    assert figures["runs"] == 1 and figures["runs_caught"] == 1
    assert figures["delay_rows_mean"] is not None and figures["delay_rows_mean"] <= 10
    assert figures["delay_seconds_mean"] == figures["delay_rows_mean"]  # one row a second
    assert "culprit_share" not in figures
    assert f"{figures['events']} events" in done.stdout
    assert "runs caught 1/1" in done.stdout


def test_evaluate_checks_the_culprit_against_a_culprit_column(
    model_dir: Path, blamed: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    done = anomstream(
        "evaluate", str(model_dir), str(blamed), "--culprit-col", "broke", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    figures = orjson.loads((out / "metrics.json").read_bytes())["events"]
    assert figures["culprit_runs"] == 1
    assert figures["culprit_share"] in (0.0, 1.0)
    assert "culprit right" in done.stdout
    # the culprit column is never a signal
    table = read_table(blamed, culprit_col="broke")
    assert table.signals == ("a", "b", "c")
    assert table.culprits is not None and table.labels is not None
    assert [bool(c) for c in table.culprits] == [bool(v) for v in table.labels]
    assert set(table.culprits) == {"", "b"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["detect", "/nonexistent-model", "DATA", "--out", "x.csv"], "model directory not found"),
        (["detect", "MODEL", "DATA", "--out", "x.txt"], "must end in .csv or .jsonl"),
        (["evaluate", "MODEL", "DATA", "--label-col", "nope"], "label column 'nope'"),
        (["evaluate", "MODEL", "NOLABELS"], "needs labels"),
        (["evaluate", "MODEL", "DATA", "--culprit-col", "nope"], "culprit column 'nope'"),
        (["evaluate", "MODEL", "DATA", "--culprit-col", "site"], "not a signal of the model"),
        (["detect", "MODEL", "DATA", "--out", "x.jsonl", "--events", "e.csv"], "end in .jsonl"),
        (["detect", "MODEL", "DATA", "--out", "x.jsonl", "--events", "x.jsonl"], "not --out"),
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
