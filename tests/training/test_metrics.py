"""Metrics checked against hand-computed counts and a brute-force average precision, so the
numbers we compare against SKAB mean what the benchmark means."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from training.metrics import Confusion, confusion, event_recall, pr_auc, report, segments

# Hand example: rows 0-2 and 7 are anomalous, alarms at rows 0, 2 and 3.
#   idx     0 1 2 3 4 5 6 7 8 9
#   label   1 1 1 0 0 0 0 1 0 0
#   pred    1 0 1 1 0 0 0 0 0 0
#   -> TP rows 0,2; FP row 3; FN rows 1,7; TN rows 4,5,6,8,9
LABELS = np.array([1, 1, 1, 0, 0, 0, 0, 1, 0, 0])
PRED = np.array([1, 0, 1, 1, 0, 0, 0, 0, 0, 0])


def test_confusion_hand_counts():
    assert confusion(LABELS, PRED) == Confusion(tp=2, fp=1, fn=2, tn=5)


def test_confusion_accepts_bool_and_lists():
    assert confusion(LABELS.astype(bool), [bool(v) for v in PRED]) == Confusion(2, 1, 2, 5)


def test_confusion_properties_hand_values():
    c = Confusion(tp=2, fp=1, fn=2, tn=5)
    assert c.precision == pytest.approx(2 / 3)
    assert c.recall == pytest.approx(0.5)
    assert c.f1 == pytest.approx(2 / (2 + (1 + 2) / 2))  # 4/7
    assert c.far == pytest.approx(1 / 6)
    assert c.mar == pytest.approx(0.5)


def test_confusion_properties_zero_denominators():
    c = Confusion(0, 0, 0, 0)
    assert (c.precision, c.recall, c.f1, c.far, c.mar) == (0.0, 0.0, 0.0, 0.0, 0.0)
    only_negatives = Confusion(tp=0, fp=0, fn=0, tn=10)
    assert only_negatives.far == 0.0
    assert only_negatives.mar == 0.0


def test_confusion_sum_pools_files():
    a = Confusion(tp=2, fp=1, fn=2, tn=5)
    b = Confusion(tp=3, fp=0, fn=1, tn=7)
    total = a + b
    assert total == Confusion(tp=5, fp=1, fn=3, tn=12)
    assert sum([b, b], a) == Confusion(tp=8, fp=1, fn=4, tn=19)
    # pooled F1 is not the mean of per-file F1s
    assert total.f1 == pytest.approx(5 / (5 + 2))


def test_confusion_add_rejects_other_types():
    with pytest.raises(TypeError):
        Confusion(1, 1, 1, 1) + 1  # type: ignore[operator]


def test_confusion_is_frozen():
    c = Confusion(1, 2, 3, 4)
    with pytest.raises(AttributeError):
        c.tp = 5  # type: ignore[misc]


def test_confusion_length_mismatch_raises():
    with pytest.raises(ValueError, match="same length"):
        confusion([0, 1, 1], [0, 1])


def test_confusion_not_1d_raises():
    with pytest.raises(ValueError, match="1-D"):
        confusion(np.zeros((3, 2)), np.zeros((3, 2)))


def test_segments_hand_cases():
    assert segments(LABELS) == [(0, 2), (7, 7)]
    assert segments([0, 0, 1, 1, 0, 1]) == [(2, 3), (5, 5)]  # ends at the last index
    assert segments([1]) == [(0, 0)]
    assert segments([1, 1, 1]) == [(0, 2)]
    assert segments([0, 0]) == []
    assert segments(np.array([], dtype=int)) == []
    assert segments(np.array([True, False, True])) == [(0, 0), (2, 2)]


def test_segments_returns_python_ints():
    ((start, end),) = segments([0, 1, 1])
    assert type(start) is int and type(end) is int


def test_event_recall_hand_cases():
    assert event_recall(LABELS, PRED) == pytest.approx(0.5)  # (0,2) hit, (7,7) missed
    assert event_recall([0, 1, 1, 0, 1], [0, 0, 1, 0, 1]) == 1.0
    # an alarm next to, but not inside, a segment does not count
    assert event_recall([0, 1, 1, 0], [1, 0, 0, 1]) == 0.0


def test_event_recall_no_segments_is_zero():
    assert event_recall([0, 0, 0], [1, 0, 1]) == 0.0


def test_event_recall_length_mismatch_raises():
    with pytest.raises(ValueError):
        event_recall([0, 1], [0, 1, 1])


def brute_force_ap(labels: np.ndarray, scores: np.ndarray) -> float:
    """From the definition: thresholds are the distinct scores (NaN = lowest), high to low;
    predict score >= t; AP = sum (R_n - R_{n-1}) * P_n with R_0 = 0."""
    y = labels.astype(bool)
    s = np.where(np.isnan(scores), -np.inf, scores)
    positives = y.sum()
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(s.tolist()), reverse=True):
        pred = s >= t
        tp = int((pred & y).sum())
        precision = tp / int(pred.sum())
        recall = tp / positives
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


def test_pr_auc_hand_case():
    # sorted: .8(1) .4(0) .35(1) .1(0) -> AP = .5*1 + .5*(2/3) = 5/6 (sklearn's doc example)
    assert pr_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(5 / 6)


def test_pr_auc_ties_are_one_threshold():
    # 0.5 is tied between a positive and a negative: P = 1/2 at R = 1/2, then P = 2/3 at R = 1
    assert pr_auc([1, 0, 1, 0], [0.5, 0.5, 0.2, 0.1]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)


def test_pr_auc_perfect_and_inverted():
    y = np.array([1, 1, 0, 0, 0])
    good = np.array([0.9, 0.8, 0.3, 0.2, 0.1])
    assert pr_auc(y, good) == pytest.approx(1.0)
    # inverted: positives ranked last -> .5 * (1/4) + .5 * (2/5)
    assert pr_auc(y, -good) == pytest.approx(0.5 * 0.25 + 0.5 * 0.4)


def test_pr_auc_no_positives_is_zero():
    assert pr_auc([0, 0, 0], [0.1, 0.5, 0.9]) == 0.0
    assert pr_auc(np.array([], dtype=int), np.array([])) == 0.0


def test_pr_auc_nan_scores_rank_lowest():
    # the positive has no score yet: it is found only at the last threshold, P = 1/3
    assert pr_auc([1, 0, 0], [np.nan, 0.9, 0.1]) == pytest.approx(1 / 3)
    assert pr_auc([1, 0, 0], [np.nan, np.nan, np.nan]) == pytest.approx(1 / 3)
    assert pr_auc([0, 1, 0], [np.nan, 0.9, np.nan]) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(20))
def test_pr_auc_matches_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    labels = rng.random(n) < 0.3
    labels[rng.integers(n)] = True
    scores = rng.integers(0, 8, size=n).astype(float) / 7  # few distinct values -> many ties
    scores[rng.random(n) < 0.1] = np.nan
    assert pr_auc(labels, scores) == pytest.approx(brute_force_ap(labels, scores))


def test_pr_auc_length_mismatch_raises():
    with pytest.raises(ValueError, match="same length"):
        pr_auc([0, 1, 1], [0.1, 0.2])


def test_report_hand_case_and_json_safe():
    scores = np.array([0.9, 0.2, 0.8, 0.7, 0.1, 0.1, 0.1, 0.3, 0.1, 0.1])
    r = report(LABELS, scores, PRED)
    assert set(r) == {
        "precision",
        "recall",
        "f1",
        "far",
        "mar",
        "event_recall",
        "pr_auc",
        "tp",
        "fp",
        "fn",
        "tn",
        "rows",
        "anomalies",
        "events",
    }
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (2, 1, 2, 5)
    assert r["rows"] == 10
    assert r["anomalies"] == 4
    assert r["events"] == 2
    assert r["f1"] == pytest.approx(4 / 7)
    assert r["far"] == pytest.approx(1 / 6)
    assert r["mar"] == pytest.approx(0.5)
    assert r["event_recall"] == pytest.approx(0.5)
    assert r["pr_auc"] == pytest.approx(brute_force_ap(LABELS, scores))
    for key, value in r.items():
        assert type(value) in (int, float), key
        assert math.isfinite(value), key
    assert json.loads(json.dumps(r)) == r


def test_report_length_mismatch_raises():
    with pytest.raises(ValueError):
        report([0, 1], [0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ValueError):
        report([0, 1], [0.1, 0.2], [0])
