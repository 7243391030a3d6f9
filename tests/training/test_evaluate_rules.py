"""Per-rule figures of `evaluate --rules`: failed, unknown, precision and share caught."""

from __future__ import annotations

import numpy as np

from detectors.engine import Scorer, ScoringConfig
from detectors.offline import score_records
from detectors.records import Record
from detectors.rules import RuleBook, parse_rules
from training.evaluate_rules import rule_lines, rule_report

BOOK = RuleBook(
    parse_rules(
        [
            {"name": "hot", "expr": "temp < 100", "severity": "high"},
            {"name": "pump_flow", "expr": "flow > 0", "sources": "pump-*"},
        ]
    )
)


def test_counts_precision_and_share_caught() -> None:
    # temp, flow, source, label
    rows = [
        (50.0, 1.0, "pump-1", 0),
        (150.0, 1.0, "pump-1", 1),  # hot fails, anomalous
        (150.0, 0.0, "pump-1", 0),  # hot and pump_flow fail, normal
        (None, 0.0, "fan-1", 1),  # hot unknown; pump_flow does not serve fans
        (50.0, 0.0, "pump-2", 1),  # pump_flow fails, anomalous
    ]
    records = [
        Record(s, 1000.0 + i, "", {"temp": t, "flow": f}) for i, (t, f, s, _) in enumerate(rows)
    ]
    scored = score_records(Scorer(ScoringConfig(warmup=50), rules=BOOK), records)
    labels = np.array([r[3] for r in rows])
    hot, flow, anyone = rule_report(BOOK, scored, labels)
    assert (hot["name"], hot["severity"], hot["expr"]) == ("hot", "high", "temp < 100")
    assert (hot["rows"], hot["failed"], hot["unknown"], hot["failed_anomalous"]) == (5, 2, 1, 1)
    assert hot["precision"] == 0.5 and hot["caught"] == 1 / 3
    assert (flow["rows"], flow["failed"], flow["unknown"], flow["failed_anomalous"]) == (4, 2, 0, 1)
    assert anyone["name"] == "(any)" and (anyone["failed"], anyone["failed_anomalous"]) == (3, 2)
    assert anyone["caught"] == 2 / 3 and anyone["anomalies"] == 3
    lines = rule_lines([hot])
    assert lines == [
        "rule hot: failed 2 of 5 rows, unknown 1; 1 of the failing labelled anomalous "
        "(precision 50.0 %), caught 33.3 % of 3 anomalous rows"
    ]


def test_nothing_failing_or_no_anomalies_is_null_not_nan() -> None:
    records = [Record("pump-1", 1000.0 + i, "", {"temp": 50.0, "flow": 1.0}) for i in range(3)]
    scored = score_records(Scorer(ScoringConfig(warmup=50), rules=BOOK), records)
    hot = rule_report(BOOK, scored, np.zeros(3))[0]
    assert hot["precision"] is None and hot["caught"] is None
    assert "precision -" in rule_lines([hot])[0]
