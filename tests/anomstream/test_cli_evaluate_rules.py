"""`anomstream evaluate --rules`: each rule's failures, unknowns, precision and share caught."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from tests.anomstream.test_cli import anomstream
from tests.coupled import coupled, write_csv, zero_crossing

RULES = """
[[rules]]
name = "coupling"
expr = "abs(b - 2 * a) < 0.5"   # b follows 2a until the break

[[rules]]
name = "c_bounded"
expr = "c < 5"

[[rules]]
name = "needs_d"
expr = "d > 0"
severity = "low"
"""


def test_evaluate_reports_each_rule_against_the_labels(model_dir: Path, tmp_path: Path) -> None:
    brk = zero_crossing(600)
    labels = np.zeros(900, dtype=int)
    labels[brk:] = 1
    data = write_csv(tmp_path / "broken.csv", coupled(900, seed=9, break_at=brk), labels)
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    plain, judged = tmp_path / "plain", tmp_path / "judged"
    done = anomstream("evaluate", str(model_dir), str(data), "--out", str(plain))
    assert done.returncode == 0, done.stderr
    done = anomstream(
        "evaluate", str(model_dir), str(data), "--out", str(judged), "--rules", str(rules)
    )
    assert done.returncode == 0, done.stderr
    report = orjson.loads((judged / "metrics.json").read_bytes())
    before = orjson.loads((plain / "metrics.json").read_bytes())
    # rules add figures; the detectors' own (and the pages judged) stay as without rules
    assert "rules" not in before
    for part in ("fused", "autoencoder", "events"):
        assert report[part] == before[part]
    coupling, bounded, needs_d, anyone = report["rules"]
    anomalies = int(labels.sum())
    assert coupling["name"] == "coupling" and coupling["anomalies"] == anomalies
    assert coupling["rows"] == 900 and coupling["failed"] > 0.8 * anomalies
    assert coupling["precision"] > 0.95 and coupling["caught"] > 0.8
    assert coupling["failed_anomalous"] == round(coupling["caught"] * anomalies)
    assert (bounded["failed"], bounded["unknown"], bounded["precision"]) == (0, 0, None)
    assert (needs_d["failed"], needs_d["unknown"], needs_d["severity"]) == (0, 900, "low")
    assert anyone["name"] == "(any)" and anyone["failed"] == coupling["failed"]
    assert f"rule coupling: failed {coupling['failed']} of 900 rows" in done.stdout
    assert "rule needs_d: failed 0 of 900 rows, unknown 900" in done.stdout


def test_a_bad_rules_file_stops_evaluate_in_one_line(model_dir: Path, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "d.csv", coupled(50), np.zeros(50, dtype=int))
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nname = "x"\nexpr = "a.b < 1"\n')
    done = anomstream("evaluate", str(model_dir), str(data), "--rules", str(rules))
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "rule 'x': column 1" in done.stderr
