"""What a compiled rule runs on: missing values and undefined arithmetic make it unknown (never
failed), three-valued and/or/not, the record fields, and the batch's columns."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.clock import LocalClock
from detectors.rules_eval import Inputs
from detectors.rules_grammar import compile_expr
from tests.detectors.test_rules_grammar import run

NAN = math.nan
HOUR = 3600.0


def test_hour_follows_a_local_clock_when_given() -> None:
    winter_noon_utc = 1_700_000_000.0 - (1_700_000_000.0 % 86_400) + 12 * HOUR
    expr = compile_expr("hour == 13")
    berlin = Inputs({}, np.array([winter_noon_utc]), LocalClock("Europe/Berlin"))
    assert expr.evaluate(berlin)[0].tolist() == [False]
    assert expr.evaluate(Inputs({}, np.array([winter_noon_utc])))[0].tolist() == [True]


def test_hour_and_dow_are_the_records_utc_time() -> None:
    monday_9 = 4 * 86_400 + 9 * HOUR  # 1970-01-05 was a Monday
    ts = [monday_9, monday_9 + 14 * HOUR, monday_9 + 5 * 86_400]  # 23:00 Mon, 09:00 Sat
    assert run("hour < 22 or load < 1", ts=ts, load=[5, 5, 5])[0] == [False, True, False]
    assert run("dow >= 5 or load < 1", ts=ts, load=[5, 5, 5])[0] == [True, True, False]
    expr = compile_expr("hour == 9")
    assert expr.fields == frozenset({"hour"}) and expr.signals == frozenset()


# unknown, never failed ----------------------------------------------------------------------


def test_a_missing_value_makes_the_rule_unknown() -> None:
    assert run("temp < 100", temp=[NAN, 150]) == ([False, True], [True, False])


def test_an_absent_signal_makes_the_rule_unknown() -> None:
    failed, unknown = compile_expr("nope > 1").evaluate(Inputs({}, np.zeros(3)))
    assert failed.tolist() == [False] * 3 and unknown.tolist() == [True] * 3


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_every_comparison_with_nan_is_unknown(op: str) -> None:
    assert run(f"x {op} 1", x=[NAN]) == ([False], [True])
    assert run(f"1 {op} x", x=[NAN]) == ([False], [True])


def test_and_or_decide_when_the_known_side_decides() -> None:
    """Three-valued (Kleene, SQL) logic: an unknown side matters only if it could change it."""
    a, b = [1, 1, 9, 9], [NAN, 1, NAN, 9]
    assert run("a < 5 and b < 5", a=a, b=b) == (
        [False, False, True, True],
        [True, False, False, False],
    )
    assert run("a < 5 or b < 5", a=a, b=b) == (
        [False, False, False, True],
        [False, False, True, False],
    )
    assert run("not b < 5", b=[NAN]) == ([False], [True])


def test_a_guard_protects_a_division() -> None:
    assert run("p == 0 or f / p < 2", p=[0, 1, 1], f=[5, 1, 5])[0] == [False, False, True]


@pytest.mark.parametrize(
    "expr",
    [
        "x / 0 < 1",
        "x % 0 < 1",
        "log(x - 5) < 1",
        "log(x - 4) < 1",
        "sqrt(x - 9) < 1",
        "(x - 9) ** 0.5 < 1",
        "10 ** (x * 400) > 1",
    ],
)
def test_undefined_arithmetic_is_unknown(expr: str) -> None:
    assert run(expr, x=[4]) == ([False], [True])


def test_nan_propagates_through_functions() -> None:
    for expr in ("max(a, b) < 5", "min(a, b) < 5", "abs(b) < 5", "sqrt(b) < 5"):
        assert run(expr, a=[9], b=[NAN]) == ([False], [True]), expr


def test_an_empty_batch() -> None:
    failed, unknown = compile_expr("x > 1 and hour < 3").evaluate(Inputs({}, np.zeros(0)))
    assert failed.shape == (0,) and unknown.shape == (0,)


def test_a_column_of_the_wrong_length_is_a_bug_not_a_verdict() -> None:
    with pytest.raises(ValueError, match="x"):
        compile_expr("x > 1").evaluate(Inputs({"x": np.zeros(2)}, np.zeros(3)))
