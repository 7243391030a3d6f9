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
from detectors.offline import episodes, events, score_records, scorer_for
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


def renamed(broken: Path, tmp_path: Path, old: str, new: str) -> Path:
    """`broken` with signal column `old` renamed `new` (or emptied, for `new` = "")."""
    lines = broken.read_text().splitlines()
    header = lines[0].split(",")
    at = header.index(old)
    if new:
        header[at] = new
        out = [",".join(header), *lines[1:]]
    else:
        out = [lines[0]] + [
            ",".join(c if i != at else "" for i, c in enumerate(line.split(",")))
            for line in lines[1:]
        ]
    path = tmp_path / f"{old}-{new or 'empty'}.csv"
    path.write_text("\n".join(out) + "\n")
    return path


@pytest.mark.parametrize(("command", "new"), [("detect", "b2"), ("evaluate", "b2"), ("detect", "")])
def test_a_file_without_the_models_signals_stops_detect_and_evaluate(
    model_dir: Path, broken: Path, tmp_path: Path, command: str, new: str
) -> None:
    data = renamed(broken, tmp_path, "b", new)
    out = tmp_path / "scores.jsonl"
    args = ["--out", str(out)] if command == "detect" else ["--out", str(tmp_path / "eval")]
    done = anomstream(command, str(model_dir), str(data), *args)
    assert done.returncode == 1, done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("anomstream: error: "), done.stderr
    assert "lacks the model's signal(s) b " in last
    assert "reads a, b, c" in last, last
    assert ("--drop-model" in last) == (command == "detect")
    assert not out.exists() and not (tmp_path / "eval").exists()
    if not new:  # the empty column is named as the reader saw it
        assert "anomstream: warning: column 'b' is empty" in done.stderr


def test_detect_with_drop_model_scores_without_it_and_says_so(
    model_dir: Path, broken: Path, tmp_path: Path
) -> None:
    data = renamed(broken, tmp_path, "b", "b2")
    out = tmp_path / "scores.jsonl"
    done = anomstream("detect", str(model_dir), str(data), "--out", str(out), "--drop-model")
    assert done.returncode == 0, done.stderr
    warnings = [w for w in done.stderr.splitlines() if w.startswith("anomstream: warning: ")]
    assert len(warnings) == 1 and "lacks the model's signal(s) b " in warnings[0]
    assert "without the model" in warnings[0]
    messages = read_jsonl(out)
    assert len(messages) == 900
    assert {m["model"] for m in messages} == {None}
    assert all("autoencoder" not in m["detectors"] for m in messages)
    assert "univariate detectors only" in done.stdout


def test_detect_and_evaluate_print_the_readers_warnings(
    model_dir: Path, broken: Path, tmp_path: Path
) -> None:
    lines = broken.read_text().splitlines()
    cells = lines[10].split(",")
    cells[1] = "ERR"
    lines[10] = ",".join(cells)
    data = tmp_path / "glitch.csv"
    data.write_text("\n".join(lines) + "\n")
    done = anomstream("detect", str(model_dir), str(data), "--out", str(tmp_path / "s.csv"))
    assert done.returncode == 0, done.stderr
    (warning,) = [w for w in done.stderr.splitlines() if "warning" in w]
    assert warning == (
        "anomstream: warning: column 'a': 1 of 900 cells are not numbers (line 11): "
        "read as missing values"
    )


def test_detect_refuses_to_overwrite_without_force(
    model_dir: Path, broken: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scores.jsonl"
    out.write_text("mine\n")
    done = anomstream("detect", str(model_dir), str(broken), "--out", str(out))
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert "exists" in line and "--force" in line and str(out) in line
    assert out.read_text() == "mine\n"
    # the events file beside it counts too
    out.unlink()
    events_file = tmp_path / "scores.events.jsonl"
    events_file.write_text("theirs\n")
    done = anomstream("detect", str(model_dir), str(broken), "--out", str(out))
    assert done.returncode == 1 and str(events_file) in done.stderr
    assert not out.exists()
    done = anomstream("detect", str(model_dir), str(broken), "--out", str(out), "--force")
    assert done.returncode == 0, done.stderr
    assert len(read_jsonl(out)) == 900 and events_file.read_text() != "theirs\n"


def test_detect_writes_the_episodes_beside_the_events(
    model_dir: Path, broken: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scores.jsonl"
    taken = tmp_path / "scores.episodes.jsonl"
    taken.write_text("theirs\n")
    done = anomstream("detect", str(model_dir), str(broken), "--out", str(out))
    assert done.returncode == 1 and str(taken) in done.stderr  # not overwritten either
    done = anomstream("detect", str(model_dir), str(broken), "--out", str(out), "--force")
    assert done.returncode == 0, done.stderr
    written = read_jsonl(taken)
    assert written and written[0]["status"] == "open"
    for msg in written:
        check("episode", msg)
    assert f"episodes -> {taken}" in done.stdout
    model = OnnxAutoencoder.load(model_dir)
    config = ScoringConfig(target_fap=model.spec.info["target_fap"])
    scored = score_records(scorer_for(model, config), read_table(broken).records())
    assert written == episodes(scored)  # the stream's function
    event_episodes = {e["episode"]["id"] for e in read_jsonl(tmp_path / "scores.events.jsonl")}
    assert event_episodes <= {m["id"] for m in written}


def test_evaluate_refuses_to_overwrite_a_named_report_without_force(
    model_dir: Path, broken: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    done = anomstream("evaluate", str(model_dir), str(broken), "--out", str(out))
    assert done.returncode == 1
    assert "exists" in done.stderr and "--force" in done.stderr
    assert (out / "metrics.json").read_text() == "{}"
    done = anomstream("evaluate", str(model_dir), str(broken), "--out", str(out), "--force")
    assert done.returncode == 0, done.stderr
    assert "fused" in orjson.loads((out / "metrics.json").read_bytes())


@pytest.mark.parametrize("what", ["file", "directory"])
def test_train_refuses_an_out_that_is_no_model_before_importing_tensorflow(
    tmp_path: Path, what: str
) -> None:
    data = write_csv(tmp_path / "d.csv", coupled(100, seed=1))
    out = tmp_path / "out"
    if what == "file":
        out.write_text("notes\n")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("mine\n")
    done = anomstream("train", str(data), "--out", str(out), "--epochs", "1")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("anomstream: error: ") and str(out) in last
    assert ("--force" in last) == (what == "directory"), last
    assert "importing TensorFlow" not in done.stderr


def test_train_replaces_a_model_directory_as_a_retrain(model_dir: Path) -> None:
    from anomstream.cli_models import train_out_problem

    assert train_out_problem(model_dir, force=False) is None  # retraining in place: intended
    assert train_out_problem(model_dir / "new", force=False) is None
    assert train_out_problem(model_dir.parent, force=False) is not None  # the models dir itself
    assert train_out_problem(model_dir.parent, force=True) is None
    assert train_out_problem(model_dir / "model.json", force=True) is not None  # a file


def test_detect_with_rules_fills_check_failures_and_raises_rule_events(
    model_dir: Path, broken: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nname = "a_high"\nexpr = "a < 1"\nseverity = "high"\n')
    out = tmp_path / "scores.jsonl"
    args = ("detect", str(model_dir), str(broken), "--out", str(out), "--rules", str(rules))
    done = anomstream(*args)
    assert done.returncode == 0, done.stderr
    messages = read_jsonl(out)
    values = [row[1] for row in csv.reader(broken.read_text().splitlines()[1:])]
    assert [m["check_failures"] == ["a_high"] for m in messages] == [float(v) >= 1 for v in values]
    assert any(m["check_failures"] for m in messages)
    written = read_jsonl(tmp_path / "scores.events.jsonl")
    rule_events = [e for e in written if e["kind"] == "rule"]
    runs = sum(
        1
        for i, m in enumerate(messages)
        if m["check_failures"] and (i == 0 or not messages[i - 1]["check_failures"])
    )
    score_events_failing = [e for e in written if e["kind"] == "score" and e["check_failures"]]
    assert rule_events and len(rule_events) + len(score_events_failing) >= runs
    assert len(rule_events) <= runs
    for event in rule_events:
        check("event", event)
        assert event["severity"] == "high" and event["check_failures"] == ["a_high"]

    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\nname = "oops"\nexpr = "a <"\n')
    done = anomstream(*args[:-1], str(bad), "--force")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("anomstream: error: ") and "oops" in lines[-1], done.stderr
    assert "Traceback" not in done.stderr
