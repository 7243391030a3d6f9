"""The grammar of validation rules, and its compiler to numpy closures.

A rule is one Python expression (parsed by `ast` in "eval" mode, never evaluated by Python)
walked node by node against a whitelist: numbers, signal names (`temp`, or `s("flow rate")` for
names that are not identifiers), the record fields `hour` and `dow`, `+ - * / % **`, unary `-`
and `+`, comparisons (chained too), `and`/`or`/`not`, and the functions in `FUNCTIONS`. Anything
else is refused with a one-line `RuleError` naming the rule and the column.

It compiles once to a tree of closures over a micro-batch's columns (`detectors.rules_eval`,
where the semantics of missing values are), so a rule costs a few numpy operations per batch,
not Python per record; constants are folded as it compiles.

>>> import numpy as np
>>> from detectors.rules_eval import Inputs
>>> rule = compile_expr("abs(pressure - 3) < 0.5 and flow > 0")
>>> failed, unknown = rule.evaluate(
...     Inputs({"pressure": np.array([3.1, 4.0, 3.0]), "flow": np.array([1.0, 1.0, np.nan])},
...            np.zeros(3)))
>>> failed.tolist(), unknown.tolist()
([False, True, False], [False, False, True])
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from detectors.rules_eval import (
    FIELDS,
    FUNCTIONS,
    Cond,
    Expression,
    Inputs,
    Num,
    Pair,
    all_of,
    any_of,
    divide,
    equality,
    ordering,
    power,
    remainder,
    value,
)

__all__ = ["FUNCTIONS", "MAX_DEPTH", "MAX_LENGTH", "QUOTE", "RuleError", "compile_expr"]

MAX_LENGTH = 1000
"""Characters a rule's expression may have."""
MAX_DEPTH = 100
"""Nesting levels a rule's tree may have: each is a call deep when the rule is evaluated."""


class RuleError(ValueError):
    """A rule cannot be used; the message is one line naming the rule and where it goes wrong."""


QUOTE = "s"
"""`s("flow rate")`: the signal of that name, whatever its characters."""

_BINARY: dict[type[ast.operator], Callable[..., np.ndarray]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: divide,
    ast.Mod: remainder,
    ast.Pow: power,
}
_SYMBOLS: dict[type[ast.AST], str] = {
    ast.FloorDiv: "//",
    ast.MatMult: "@",
    ast.BitAnd: "& (use and)",
    ast.BitOr: "| (use or)",
    ast.BitXor: "^ (use ** for powers)",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~ (use not)",
    ast.In: "'in'",
    ast.NotIn: "'not in'",
    ast.Is: "'is'",
    ast.IsNot: "'is not'",
}
_ORDER: dict[type[ast.cmpop], Pair] = {
    ast.Lt: ordering(np.less, np.greater_equal),
    ast.LtE: ordering(np.less_equal, np.greater),
    ast.Gt: ordering(np.greater, np.less_equal),
    ast.GtE: ordering(np.greater_equal, np.less),
}
_REFUSED: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.NamedExpr: "assignment expressions (:=)",
    ast.JoinedStr: "f-strings",
    ast.Starred: "starred arguments",
    ast.IfExp: "conditional expressions",
    ast.Tuple: "tuples (a rule is one expression: join conditions with and/or)",
    ast.List: "lists",
    ast.Set: "sets",
    ast.Dict: "dicts",
    ast.Await: "await",
}


def compile_expr(text: str, rule: str = "rule") -> Expression:
    """Parse and compile `text`, or raise `RuleError` naming `rule` and the position."""
    if len(text) > MAX_LENGTH:
        raise RuleError(
            f"rule {rule!r}: the expression is {len(text)} characters long, at most {MAX_LENGTH}"
        )
    walker = _Compiler(rule, text)
    tree, walker.shift = _parse(text, walker)
    if _depth(tree) > MAX_DEPTH:
        raise RuleError(f"rule {rule!r}: the expression is nested more than {MAX_DEPTH} deep")
    test = walker.cond(tree, root=True)
    if not walker.signals and not walker.fields:
        raise walker.error(tree, "names no signal: it is always true or always false")
    return Expression(text, frozenset(walker.signals), frozenset(walker.fields), test)


def _parse(text: str, walker: _Compiler) -> tuple[ast.expr, int]:
    """The tree and how many lines precede the text in the source parsed: as written, or in
    parentheses (so that a rule may span lines and start with blanks, as TOML strings do)."""
    try:
        return ast.parse(text, mode="eval").body, 0
    except SyntaxError as exc:
        plain = exc
    wrapped = f"(\n{text}\n)"
    walker.source = wrapped
    try:
        body = ast.parse(wrapped, mode="eval").body
    except SyntaxError as exc:
        lines = len(walker.lines)
        if exc.lineno is not None and 2 <= exc.lineno <= lines + 1 and (exc.offset or 0) >= 1:
            where = walker.where(exc.lineno - 1, exc.offset or 1, chars=True)
        elif plain.lineno and plain.offset and plain.offset >= 1:
            where = walker.where(plain.lineno, plain.offset, chars=True)
        else:
            where = walker.where(lines, len(walker.lines[-1]) + 1, chars=True)
        raise RuleError(f"rule {walker.rule!r}: {where}: syntax error: {exc.msg}") from None
    if isinstance(body, ast.Tuple) and not body.elts:
        raise RuleError(f"rule {walker.rule!r}: column 1: syntax error: the expression is empty")
    return body, 1


def _depth(tree: ast.AST) -> int:
    deepest, todo = 0, [(tree, 1)]
    while todo:
        node, depth = todo.pop()
        deepest = max(deepest, depth)
        todo.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


class _Compiler:
    """Walks one rule's tree: numbers and conditions kept apart, positions kept for errors."""

    def __init__(self, rule: str, text: str) -> None:
        self.rule = rule
        self.source = text
        self.lines = re.split(r"\r\n|\r|\n", text)
        self.shift = 0
        self.signals: set[str] = set()
        self.fields: set[str] = set()

    def where(self, line: int, col: int, chars: bool = False) -> str:
        """'column 5' (or 'line 2, column 5'): 1-based characters into the rule's text; `col`
        is a 0-based byte offset (ast) unless `chars` (SyntaxError: 1-based characters)."""
        line = min(max(line, 1), len(self.lines))
        if not chars:
            col = len(self.lines[line - 1].encode()[:col].decode(errors="replace")) + 1
        return f"column {col}" if len(self.lines) == 1 else f"line {line}, column {col}"

    def error(self, node: ast.AST, what: str) -> RuleError:
        line, col = getattr(node, "lineno", 1) - self.shift, getattr(node, "col_offset", 0)
        if line < 1:  # the parentheses added around the text
            line, col = 1, 0
        return RuleError(f"rule {self.rule!r}: {self.where(line, col)}: {what}")

    def snippet(self, node: ast.AST) -> str:
        text = " ".join((ast.get_source_segment(self.source, node) or "").split())
        return f"`{text if len(text) <= 40 else text[:37] + '...'}`"

    def refuse(self, node: ast.AST) -> RuleError:
        what = _REFUSED.get(type(node), type(node).__name__)
        return self.error(node, f"not allowed: {what} {self.snippet(node)}")

    # conditions --------------------------------------------------------------------------

    def cond(self, node: ast.expr, root: bool = False) -> Cond:
        if isinstance(node, ast.BoolOp):
            parts = [self.cond(v) for v in node.values]
            return all_of(parts) if isinstance(node.op, ast.And) else any_of(parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.cond(node.operand)
            return lambda inp: inner(inp)[::-1]
        if isinstance(node, ast.Compare):
            return self.compare(node)
        self.num(node)  # refuses what is neither, first
        need = "a rule must be a comparison" if root else "a comparison is needed"
        text = self.snippet(node)
        raise self.error(node, f"{text} is a number, where {need} (e.g. {text[:-1]} > 0`)")

    def compare(self, node: ast.Compare) -> Cond:
        for op in node.ops:
            if type(op) in _SYMBOLS:
                raise self.error(node, f"not allowed: {_SYMBOLS[type(op)]} comparisons")
        nums = [self.num(v) for v in (node.left, *node.comparators)]
        pairs = [
            _ORDER.get(type(op)) or equality(isinstance(op, ast.Eq), (callable(a), callable(b)))
            for op, a, b in zip(node.ops, nums, nums[1:], strict=False)
        ]
        if len(pairs) == 1:
            a, b = nums
            only = pairs[0]
            return lambda inp: only(value(a, inp), value(b, inp))

        def chain(inp: Inputs) -> tuple[Any, Any]:
            values = [value(v, inp) for v in nums]
            true, false = pairs[0](values[0], values[1])
            for k in range(1, len(pairs)):
                t, f = pairs[k](values[k], values[k + 1])
                true, false = true & t, false | f
            return true, false

        return chain

    # numbers -----------------------------------------------------------------------------

    def num(self, node: ast.expr) -> Num:
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp):
            fn = _BINARY.get(type(node.op))
            if fn is None:
                raise self.error(node, f"not allowed: the operator {_SYMBOLS[type(node.op)]}")
            return self.apply(node, fn, [self.num(node.left), self.num(node.right)])
        if isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not):
            if isinstance(node.op, ast.Invert):
                raise self.error(node, f"not allowed: the operator {_SYMBOLS[ast.Invert]}")
            inner = self.num(node.operand)
            return (
                inner if isinstance(node.op, ast.UAdd) else self.apply(node, np.negative, [inner])
            )
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.BoolOp | ast.Compare | ast.UnaryOp):
            self.cond(node)
            raise self.error(node, f"{self.snippet(node)} is a condition, where a number is needed")
        raise self.refuse(node)

    def constant(self, node: ast.Constant) -> float:
        value = node.value
        if isinstance(value, bool) or value is None:
            raise self.error(node, f"not allowed: {value} (not a number)")
        if isinstance(value, str | bytes):
            what = f'strings {self.snippet(node)}; a quoted signal name is written s("name")'
            raise self.error(node, f"not allowed: {what}")
        if isinstance(value, complex):
            raise self.error(node, f"not allowed: complex numbers {self.snippet(node)}")
        if not isinstance(value, int | float):
            raise self.error(node, f"not allowed: {self.snippet(node)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.error(node, f"{self.snippet(node)} is not a finite number")
        return number

    def name(self, node: ast.Name) -> Num:
        name = node.id
        written = ast.get_source_segment(self.source, node)
        if written is not None and written != name:  # Python normalised it (NFKC)
            raise self.error(node, f'write the name {written!r} quoted: s("{written}")')
        if name.startswith("__"):
            raise self.error(node, f"not allowed: dunder name {name}")
        if name in FUNCTIONS or name == QUOTE:
            raise self.error(
                node, f'{name} is a function: call it, or quote a signal so named: s("{name}")'
            )
        if name in FIELDS:
            self.fields.add(name)
            return lambda inp: inp.field(name)
        self.signals.add(name)
        return lambda inp: inp.signal(name)

    def call(self, node: ast.Call) -> Num:
        func = node.func
        if not isinstance(func, ast.Name):
            if type(func) in _REFUSED:
                raise self.refuse(func)
            raise self.error(node, f"not allowed: calling {self.snippet(func)}")
        if node.keywords:
            keyword = node.keywords[0]
            raise self.error(keyword, f"not allowed: keyword arguments {self.snippet(keyword)}")
        if func.id == QUOTE:
            return self.quoted(node)
        spec = FUNCTIONS.get(func.id)
        if spec is None:
            known = ", ".join(sorted(FUNCTIONS))
            raise self.error(node, f"not allowed: calling {func.id!r} (functions: {known})")
        args = [self.num(a) for a in node.args]
        least, most = spec[0], spec[1]
        if len(args) < least or (most is not None and len(args) > most):
            takes = f"{least} argument" if most == least == 1 else f"{least} or more arguments"
            raise self.error(node, f"{func.id} takes {takes}, got {len(args)}")
        if len(args) == 1:
            return self.apply(node, spec[2], args)
        result = args[0]
        for arg in args[1:]:  # min/max of many: pairwise
            result = self.apply(node, spec[2], [result, arg])
        return result

    def quoted(self, node: ast.Call) -> Num:
        arg = node.args[0] if len(node.args) == 1 else None
        if not isinstance(arg, ast.Constant) or not isinstance(arg.value, str):
            raise self.error(node, 's() takes one quoted signal name, as in s("flow rate")')
        name = arg.value
        if not name:
            raise self.error(node, 's("") names no signal: the name is empty')
        self.signals.add(name)
        return lambda inp: inp.signal(name)

    def apply(self, node: ast.expr, fn: Callable[..., np.ndarray], args: list[Num]) -> Num:
        """`fn` over the arguments: folded now when all are constants, else a closure."""
        if all(isinstance(a, float) for a in args):
            with np.errstate(all="ignore"):
                folded = float(fn(*(np.array([a]) for a in args))[0])
            if not math.isfinite(folded):
                raise self.error(node, f"{self.snippet(node)} is not a finite number")
            return folded
        if len(args) == 1:
            (x,) = args
            assert callable(x)
            return lambda inp: fn(x(inp))
        a, b = args
        if isinstance(b, float):
            assert callable(a)
            return lambda inp: fn(a(inp), b)
        if isinstance(a, float):
            return lambda inp: fn(a, b(inp))
        return lambda inp: fn(a(inp), b(inp))
