"""SKAB's leave-one-file-out choice: chosen on the other files, within the false-alarm budget,
scored on the held-out one. Confusion matrices only: no model is trained."""

from __future__ import annotations

import pytest

from bench.skab import crossval as cv
from training.metrics import Confusion


def c(tp: int, fp: int, fn: int, tn: int) -> Confusion:
    return Confusion(tp, fp, fn, tn)


# Three files. "tight" is good everywhere but file 2, "loose" finds more but pays in alarms on
# files 0 and 1 (pooled FAR 20 % over them: over the 13 % budget).
PER_FILE = {
    "tight": [c(80, 2, 20, 98), c(80, 2, 20, 98), c(10, 0, 90, 100)],
    "loose": [c(95, 20, 5, 80), c(95, 20, 5, 80), c(90, 5, 10, 95)],
}


def test_the_budget_decides_before_f1() -> None:
    assert cv.choose(PER_FILE, [0, 1]) == "tight"  # loose has the better F1 but FAR 20 %
    assert cv.choose(PER_FILE, [0, 1], max_far=0.25) == "loose"
    assert cv.total([PER_FILE["loose"][i] for i in (0, 1)]).far == pytest.approx(0.2)


def test_each_fold_is_chosen_without_its_file_and_scored_on_it() -> None:
    folds = cv.leave_one_out(PER_FILE)
    # without file 0 (or 1): files 1 (0) and 2 pooled, loose has FAR 12.5 % and the better F1
    assert [f.choice for f in folds] == ["loose", "loose", "tight"]
    assert [f.confusion for f in folds] == [
        PER_FILE["loose"][0],
        PER_FILE["loose"][1],
        PER_FILE["tight"][2],
    ]
    held_out = cv.total([f.confusion for f in folds])
    assert held_out == c(200, 40, 100, 260)
    # in-sample, tight wins on all three (loose's pooled FAR is 15 %): the held-out sum differs
    assert cv.choose(PER_FILE, [0, 1, 2]) == "tight"
    assert cv.summary([f.confusion for f in folds])["f1"] == pytest.approx(held_out.f1)


def test_ties_keep_the_first_setting_and_no_setting_within_budget_takes_the_fewest_alarms() -> None:
    same = {"default": PER_FILE["tight"], "copy": list(PER_FILE["tight"])}
    assert {f.choice for f in cv.leave_one_out(same)} == {"default"}
    noisy = {"a": [c(9, 50, 1, 50)] * 2, "b": [c(9, 40, 1, 60)] * 2}
    assert cv.choose(noisy, [0, 1]) == "b"


def test_spread_is_over_the_files_f1() -> None:
    s = cv.Spread.of([c(1, 0, 1, 5), c(1, 0, 0, 5), c(0, 1, 1, 5)])
    assert (s.min, s.median, s.max) == pytest.approx((0.0, 2 / 3, 1.0))
    assert s.std == pytest.approx(
        ((2 / 3 - 5 / 9) ** 2 + (1 - 5 / 9) ** 2 + (5 / 9) ** 2) ** 0.5 / 3**0.5
    )


def test_settings_must_cover_the_same_files() -> None:
    with pytest.raises(ValueError, match="one confusion per file"):
        cv.leave_one_out({"a": [c(1, 0, 0, 1)] * 3, "b": [c(1, 0, 0, 1)] * 2})
    with pytest.raises(ValueError, match="at least two files"):
        cv.leave_one_out({"a": [c(1, 0, 0, 1)]})
