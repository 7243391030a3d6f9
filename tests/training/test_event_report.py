"""Event-level figures (`metrics.event_report`) against hand-computed counts: what an operator
sees is pages, not rows: false pages per 10k normal rows, runs caught, delay, the culprit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.metrics import event_report

# Hand example, 20 rows, three labelled runs, six events:
#   idx      0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19
#   label    0 0 1 1 1 1 0 0 0 0 1  1  0  0  0  0  1  1  1  0
#   event      x     x x     x         x              x
#   culprit      b b b b         a  a           c  c  c        (labelled signal on run rows)
#   first      a     b a     c         a              a        (event's first signal)
# runs (2,5) caught at 4 (delay 2 rows), (10,11) missed (12 is one row after its end),
# (16,18) caught at 17 (delay 1 row); false events 1, 8, 12; 11 normal rows.
LABELS = np.array([0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0])
EVENTS = np.array([1, 4, 5, 8, 12, 17])
FIRST = ["a", "b", "a", "c", "a", "a"]
TRUTH = np.array([""] * 20, dtype=object)
TRUTH[2:6], TRUTH[10:12], TRUTH[16:19] = "b", "a", "c"
TIMES = np.arange(20) * 10.0
TIMES[17] = 175.0  # run 3 starts at 160 s: its first event comes 15 s later


def test_hand_example_without_grace() -> None:
    got = event_report(LABELS, EVENTS, TIMES, TRUTH, FIRST)
    assert got == {
        "events": 6,
        "true_events": 3,
        "false_events": 3,
        "normal_rows": 11,
        "false_per_10k_normal": pytest.approx(3 / 11 * 1e4),
        "grace_rows": 0,
        "runs": 3,
        "runs_caught": 2,
        "caught_share": pytest.approx(2 / 3),
        "delay_rows_mean": 1.5,
        "delay_rows_median": 1.5,
        "delay_seconds_mean": 17.5,
        "delay_seconds_median": 17.5,
        "culprit_runs": 2,
        "culprit_right": 1,  # run 1: b is b; run 3: a is not c
        "culprit_share": 0.5,
    }
    json.dumps(got)  # plain Python numbers


def test_a_grace_of_one_row_catches_the_late_event() -> None:
    got = event_report(LABELS, EVENTS, TIMES, TRUTH, FIRST, grace=1)
    assert (got["true_events"], got["false_events"], got["runs_caught"]) == (4, 2, 3)
    assert got["false_per_10k_normal"] == pytest.approx(2 / 11 * 1e4)
    assert got["caught_share"] == 1.0
    assert got["delay_rows_mean"] == pytest.approx(5 / 3)  # 2, 2, 1
    assert got["delay_rows_median"] == 2.0
    assert got["delay_seconds_mean"] == pytest.approx(55 / 3)  # 20, 20, 15
    assert (got["culprit_runs"], got["culprit_right"]) == (3, 2)  # run 2: a is a


def test_grace_never_reaches_into_the_next_run() -> None:
    """Rows 0-1 and 3-4 are runs; the event at 3 is the second run's, not the first's."""
    got = event_report([1, 1, 0, 1, 1], [3], grace=5)
    assert (got["runs"], got["runs_caught"], got["false_events"]) == (2, 1, 0)
    assert got["delay_rows_mean"] == 0.0


def test_without_times_or_culprits_those_figures_are_left_out_or_null() -> None:
    got = event_report(LABELS, EVENTS)
    assert got["delay_rows_mean"] == 1.5
    assert got["delay_seconds_mean"] is None
    assert "culprit_share" not in got


def test_nothing_caught_and_nothing_to_catch() -> None:
    missed = event_report([0, 1, 1, 0], [])
    assert (missed["runs"], missed["runs_caught"], missed["caught_share"]) == (1, 0, 0.0)
    assert missed["delay_rows_mean"] is None and missed["events"] == 0
    quiet = event_report([0, 0, 0, 0], [2], culprits_true=["", "", "", ""], culprits_first=["x"])
    assert (quiet["runs"], quiet["false_events"]) == (0, 1)
    assert quiet["false_per_10k_normal"] == pytest.approx(2500.0)
    assert quiet["caught_share"] is None and quiet["culprit_share"] is None


def test_unsorted_events_are_sorted_with_their_culprits() -> None:
    got = event_report(LABELS, EVENTS[::-1], TIMES, TRUTH, FIRST[::-1])
    assert got == event_report(LABELS, EVENTS, TIMES, TRUTH, FIRST)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"event_rows": [20]}, "outside"),
        ({"event_rows": [-1]}, "outside"),
        ({"times": np.zeros(3)}, "same length"),
        ({"culprits_true": TRUTH, "culprits_first": ["a"]}, "same length"),
        ({"culprits_first": FIRST}, "both"),
        ({"grace": -1}, "grace"),
    ],
)
def test_misaligned_input_is_refused(kwargs: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {"event_rows": EVENTS, **kwargs}
    with pytest.raises(ValueError, match=needle):
        event_report(LABELS, **args)  # type: ignore[arg-type]
