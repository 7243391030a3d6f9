"""The rule grammar: what parses, what is refused (with the rule and the column), and the
three-valued semantics of a compiled rule over a micro-batch's arrays."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from detectors.rules_eval import Inputs
from detectors.rules_grammar import FUNCTIONS, RuleError, compile_expr

NAN = math.nan
HOUR = 3600.0


def run(
    expr: str, ts: Sequence[float] | None = None, **signals: Sequence[float]
) -> tuple[list[bool], list[bool]]:
    """(failed, unknown) per record of `expr` over the given columns."""
    n = len(next(iter(signals.values()))) if signals else len(ts or [])
    times = np.asarray(ts if ts is not None else [0.0] * n, dtype=np.float64)
    cols = {k: np.asarray(v, dtype=np.float64) for k, v in signals.items()}
    failed, unknown = compile_expr(expr).evaluate(Inputs(cols, times))
    assert failed.dtype == bool and unknown.dtype == bool
    assert not (failed & unknown).any(), "a record is failed or unknown, never both"
    return failed.tolist(), unknown.tolist()


def refused(expr: str, rule: str = "r1") -> str:
    with pytest.raises(RuleError) as info:
        compile_expr(expr, rule=rule)
    message = str(info.value)
    assert "\n" not in message
    assert f"rule {rule!r}" in message
    return message


# accepted forms ---------------------------------------------------------------------------


def test_a_comparison_fails_where_it_is_false() -> None:
    assert run("temp < 100", temp=[50, 100, 150]) == ([False, True, True], [False] * 3)


def test_chained_comparisons_hold_for_every_link() -> None:
    failed, _ = run("0 <= pos <= 100", pos=[-1, 0, 50, 100, 101])
    assert failed == [True, False, False, False, True]
    failed, _ = run("a < b < c", a=[1, 1, 3], b=[2, 2, 2], c=[3, 1, 3])
    assert failed == [False, True, True]


def test_arithmetic_follows_python_precedence() -> None:
    failed, _ = run("abs(pressure - 3) < 0.5 and flow > 0", pressure=[3.2, 3.6, 3], flow=[1, 1, 0])
    assert failed == [False, True, True]
    assert run("2 + 3 * x ** 2 == 14", x=[2, -2, 1])[0] == [False, False, True]
    assert run("-x ** 2 < 0", x=[3])[0] == [False]  # -(x**2), as in Python
    assert run("x % 3 == 1 and x / 4 == 1", x=[4, 7])[0] == [False, True]
    assert run("+x == x - -0", x=[5])[0] == [False]


def test_functions() -> None:
    assert run("sqrt(x) == 3 and log(y) == 0", x=[9, 4], y=[1, 1])[0] == [False, True]
    assert run("max(a, b, 4) - min(a, b) < 5", a=[1, 1], b=[2, 9])[0] == [False, True]
    assert run("abs(x) <= 2", x=[-2, -3])[0] == [False, True]


def test_not_or_and() -> None:
    assert run("not x > 5", x=[1, 9])[0] == [False, True]
    assert run("x < 0 or x > 10", x=[-1, 5, 11])[0] == [False, True, False]
    assert run("(x > 0 or y > 0) and not (x > 5 and y > 5)", x=[1, 6, 0], y=[0, 6, 0])[0] == [
        False,
        True,
        True,
    ]


def test_quoted_names_reach_signals_with_odd_characters() -> None:
    expr = compile_expr('s("flow rate") > 0 and s("pump.temp") < s("class")')
    assert expr.signals == frozenset({"flow rate", "pump.temp", "class"})
    cols = {"flow rate": np.array([1.0]), "pump.temp": np.array([5.0]), "class": np.array([3.0])}
    assert expr.evaluate(Inputs(cols, np.zeros(1)))[0].tolist() == [True]


def test_a_signal_named_like_a_field_or_function_is_quoted() -> None:
    expr = compile_expr('s("hour") > 1 and s("abs") > 1')
    assert expr.signals == frozenset({"hour", "abs"}) and expr.fields == frozenset()


def test_multi_line_expressions_and_comments() -> None:
    text = "temp < 100  # too hot\n  and flow > 0"
    assert run(text, temp=[50, 50], flow=[1, 0])[0] == [False, True]


def test_numbers_in_every_python_spelling() -> None:
    assert run("x < 1_000 and x > 1e-3 and x != 0x10", x=[16, 5])[0] == [True, False]


# refused forms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "column", "needle"),
    [
        ("temp.real < 1", 1, "attribute"),
        ("x < 1 and os.system(1)", 11, "attribute"),
        ("eval(1) < 2", 1, "'eval'"),
        ("__import__(1) < 2", 1, "'__import__'"),
        ("x < 1 or (lambda: 1)() > 0", 11, "lambda"),
        ("(lambda y: y) < 1", 2, "lambda"),
        ("[v for v in x] < 1", 1, "comprehension"),
        ("x < sum(v for v in x)", 5, "'sum'"),
        ("max(v for v in x) < 1", 4, "comprehension"),
        ("{v: 1 for v in x} < 1", 1, "comprehension"),
        ("x[0] < 1", 1, "subscript"),
        ("__class__ < 1", 1, "dunder"),
        ("x < __builtins__", 5, "dunder"),
        ("x < 'a'", 5, "string"),
        ("x < b'a'", 5, "string"),
        ("x < f'{x}'", 5, "f-string"),
        ("max(*x) < 1", 5, "starred"),
        ("(y := x) < 1", 2, ":="),
        ("max(x, key=1) < 1", 8, "keyword"),
        ("x < True", 5, "True"),
        ("x < None", 5, "None"),
        ("x < 1j", 5, "complex"),
        ("x if y else z", 1, "conditional"),
        ("x in y", 1, "'in'"),
        ("x is y", 1, "'is'"),
        ("x // 2 < 1", 1, "//"),
        ("x & 1", 1, "&"),
        ("~x < 1", 1, "~"),
        ("(x, y) < 1", 1, "tuple"),
        ("x < 1, y < 1", 1, "tuple"),
        ("[x] < 1", 1, "list"),
        ("x < ...", 5, "..."),
        ("abs(x, y) < 1", 1, "abs takes 1"),
        ("max(x) < 1", 1, "max takes 2"),
        ("s(x) < 1", 1, 's("'),
        ('s("") < 1', 1, "empty"),
        ("abs < 1", 1, "function"),
        ("x + 1", 1, "comparison"),
        ("x", 1, "comparison"),
        ("(x < 1) + 1 < 2", 2, "number"),
        ("not x", 5, "number"),
        ("x < 1 and y", 11, "number"),
        ("abs(x < 1) < 2", 5, "number"),
        ("1 < 2", 1, "no signal"),
        ("x < 1e999", 5, "finite"),
        ("x < 10 ** 400", 5, "finite"),
        ("x < " + "9" * 400, 5, "finite"),
        ("x < sqrt(-1)", 5, "finite"),
    ],
)
def test_refused_with_the_rule_and_the_column(expr: str, column: int, needle: str) -> None:
    message = refused(expr)
    assert f"column {column}:" in message, message
    assert needle in message, message


@pytest.mark.parametrize(
    ("expr", "column"),
    [("x < < 1", 5), ("x <", 4), ("(x < 1", 1), ("x < 1)", 6), ("", 1), ("x ! 1", 3)],
)
def test_syntax_errors_name_the_column(expr: str, column: int) -> None:
    message = refused(expr)
    assert "syntax" in message and f"column {column}:" in message, message


def test_columns_count_characters_not_bytes() -> None:
    text = 's("température") < x.y'
    assert f"column {text.index('x.y') + 1}:" in refused(text)


def test_positions_on_later_lines_name_the_line() -> None:
    message = refused("temp < 100\n  and x.y > 0")
    assert "line 2, column 7:" in message, message


def test_a_name_python_would_normalise_must_be_quoted() -> None:
    assert 's("' in refused("ﬁlow > 1")  # NFKC turns the ligature into "fi"


def test_a_very_long_expression_is_refused() -> None:
    assert "long" in refused(" + ".join(["x"] * 2000) + " < 1")


@pytest.mark.parametrize("expr", ["-" * 200 + "x < 1", " + ".join(["x"] * 200) + " < 1"])
def test_a_deep_tree_is_refused_before_it_can_overflow_the_stack(expr: str) -> None:
    assert "deep" in refused(expr)


def test_every_function_is_documented() -> None:
    assert set(FUNCTIONS) == {"abs", "min", "max", "sqrt", "log"}
