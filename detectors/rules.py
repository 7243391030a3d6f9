"""Validation rules: named conditions from configuration, judged on every record of a batch.

A rule is `{name, expr, sources = "*", severity = "medium"}`; `expr` is in the grammar of
`detectors.rules_grammar`, `sources` glob patterns of the sources it serves (`!pattern`
excludes, the last match wins, as for signal patterns). A `RuleBook` holds a deployment's rules,
knows which serve a source (cached), and judges a micro-batch in a few numpy operations per rule:
per rule and record, failed (the condition is false), unknown (a signal it needs is missing) or
neither (it holds, or does not apply to the record's source).

>>> import numpy as np
>>> book = RuleBook(parse_rules([{"name": "hot", "expr": "temp < 100", "sources": "pump-*"}]))
>>> verdicts = book.evaluate({"temp": np.array([50.0, 150.0, np.nan])}, np.zeros(3), "pump-1")
>>> verdicts.failures(), verdicts.unknowns()
([[], ['hot'], []], [[], [], ['hot']])
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from detectors.clock import LocalClock
from detectors.records import Record
from detectors.rules_eval import UTC, Expression, Inputs
from detectors.rules_grammar import RuleError, compile_expr
from detectors.steps import signal_matches

__all__ = ["SEVERITIES", "Rule", "RuleBook", "RuleError", "Verdicts", "load_rules", "parse_rules"]

SEVERITIES = ("low", "medium", "high", "critical")
KEYS = ("name", "expr", "sources", "severity")
NAME = re.compile(r"[\w.:-]{1,64}")
"""Rule names: they travel in `check_failures` and label events, so no spaces."""
CACHED_SOURCES = 100_000
"""Sources whose applicable rules are remembered; beyond, the cache starts again."""


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    expr: Expression
    sources: tuple[str, ...] = ("*",)
    severity: str = "medium"

    def applies(self, source: str) -> bool:
        return signal_matches(source, self.sources)


def parse_rules(items: object, origin: str = "rules") -> tuple[Rule, ...]:
    """Rules from a list of tables (a file's `[[rules]]`, or a settings value); `origin` starts
    every error message (the file, or the setting)."""
    if not isinstance(items, list):
        raise RuleError(f"{origin}: expected a list of rules, got {type(items).__name__}")
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for number, item in enumerate(items, 1):
        rule = _rule(item, number, origin)
        if rule.name in seen:
            raise RuleError(
                f"{origin}: rule {rule.name!r} is defined twice (#{seen[rule.name]} and #{number})"
            )
        seen[rule.name] = number
        rules.append(rule)
    return tuple(rules)


def _rule(item: object, number: int, origin: str) -> Rule:
    if not isinstance(item, dict):
        raise RuleError(f"{origin}: rule #{number} must be a table with name and expr")
    name = item.get("name")
    if name is None:
        raise RuleError(f"{origin}: rule #{number} has no name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise RuleError(
            f"{origin}: rule #{number}: name must be 1-64 letters, digits or _ . : -, got {name!r}"
        )
    label = f"{origin}: rule {name!r}"
    stray = [k for k in item if k not in KEYS]
    if stray:
        raise RuleError(f"{label}: unknown key {stray[0]!r} (keys: {', '.join(KEYS)})")
    expr = item.get("expr")
    if expr is None:
        raise RuleError(f"{label} has no expr")
    if not isinstance(expr, str):
        raise RuleError(f"{label}: expr must be a string, got {type(expr).__name__}")
    sources = item.get("sources", "*")
    patterns = [sources] if isinstance(sources, str) else sources
    if (
        not isinstance(patterns, list)
        or not patterns
        or not all(isinstance(p, str) and p for p in patterns)
    ):
        raise RuleError(f"{label}: sources must be a glob pattern or a list of them, e.g. pump-*")
    severity = item.get("severity", "medium")
    if severity not in SEVERITIES:
        raise RuleError(f"{label}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    try:
        compiled = compile_expr(expr, name)
    except RuleError as exc:
        raise RuleError(f"{origin}: {exc}") from None
    return Rule(name, compiled, tuple(patterns), severity)


def load_rules(path: Path) -> tuple[Rule, ...]:
    """A rules file: TOML `[[rules]]` tables, or (`.json`) a JSON list or `{"rules": [...]}`."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RuleError(f"rules file not found: {path}") from None
    except IsADirectoryError:
        raise RuleError(f"{path} is a directory, not a rules file") from None
    except OSError as exc:
        raise RuleError(f"cannot read the rules file {path}: {exc.strerror}") from None
    data: Any
    try:
        if path.suffix.lower() == ".json":
            data = orjson.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except orjson.JSONDecodeError as exc:
        raise RuleError(f"{path}: not valid JSON: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise RuleError(f"{path}: not UTF-8 text") from None
    if isinstance(data, dict):
        stray = [k for k in data if k != "rules"]
        if stray:
            raise RuleError(
                f"{path}: unknown key {stray[0]!r} (a rules file holds [[rules]] tables)"
            )
        data = data.get("rules", [])
    return parse_rules(data, str(path))


@dataclass(frozen=True, slots=True)
class Verdicts:
    """A batch's verdicts: (rules x records) masks, rows in the book's order."""

    names: tuple[str, ...]
    failed: np.ndarray
    unknown: np.ndarray
    applies: np.ndarray

    def failures(self) -> list[list[str]]:
        """Per record, the names of the rules it fails: its `check_failures`."""
        return self._names(self.failed)

    def unknowns(self) -> list[list[str]]:
        """Per record, the rules that could not judge it (a signal they need is missing)."""
        return self._names(self.unknown)

    def _names(self, mask: np.ndarray) -> list[list[str]]:
        out: list[list[str]] = [[] for _ in range(mask.shape[1])]
        if mask.any():
            rows, cols = np.nonzero(mask)
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                out[c].append(self.names[r])
        return out


class RuleBook:
    """A deployment's rules: which serve each source, and their verdicts on a batch. `clock`
    is the time `hour` and `dow` are read in (the deployment's timezone; UTC by default)."""

    def __init__(self, rules: Sequence[Rule], clock: LocalClock = UTC) -> None:
        self.rules = tuple(rules)
        self.clock = clock
        self.names = tuple(r.name for r in self.rules)
        self.signals = frozenset().union(*(r.expr.signals for r in self.rules))
        """Every signal some rule reads: the columns `evaluate` needs."""
        self._serving: dict[str, np.ndarray] = {}
        self._chosen: dict[str, tuple[Rule, ...]] = {}

    @classmethod
    def from_file(cls, path: Path, clock: LocalClock = UTC) -> RuleBook:
        return cls(load_rules(path), clock)

    def __len__(self) -> int:
        return len(self.rules)

    def serving(self, source: str) -> np.ndarray:
        """(rules,) bool: which rules apply to `source` (cached)."""
        mask = self._serving.get(source)
        if mask is None:
            if len(self._serving) >= CACHED_SOURCES:
                self._serving.clear()
                self._chosen.clear()
            mask = np.array([r.applies(source) for r in self.rules], dtype=bool)
            self._serving[source] = mask
        return mask

    def for_source(self, source: str) -> tuple[Rule, ...]:
        """The rules that apply to `source`, in the book's order (cached)."""
        chosen = self._chosen.get(source)
        if chosen is None:
            mask = self.serving(source).tolist()
            chosen = tuple(r for r, m in zip(self.rules, mask, strict=True) if m)
            self._chosen[source] = chosen
        return chosen

    def evaluate(
        self,
        signals: Mapping[str, np.ndarray],
        ts: np.ndarray,
        sources: str | Sequence[str],
        counts: Sequence[int] | None = None,
    ) -> Verdicts:
        """Verdicts of every rule on a batch: `signals` maps names to (n,) float64 columns (NaN
        or absent = missing), `ts` is (n,) epoch seconds, `sources` the records' sources (or
        one for all). With `counts`, `sources` are runs: the first `counts[0]` records are of
        `sources[0]`, and so on (the scorer's layout, source by source)."""
        inputs = Inputs(signals, ts, self.clock)
        n, k = inputs.n, len(self.rules)
        every: np.ndarray = np.ones(k, dtype=bool)  # rows where the rule applies to every record
        if isinstance(sources, str):
            applies = np.repeat(self.serving(sources)[:, None], n, axis=1)
        elif counts is not None:
            table = np.array([self.serving(s) for s in sources], dtype=bool).reshape(-1, k)
            applies = np.repeat(table.T, np.asarray(counts, dtype=np.intp), axis=1)
            every = np.asarray(table.all(axis=0))
        else:
            index: dict[str, int] = {}
            inverse = [index.setdefault(s, len(index)) for s in sources]
            table = np.array([self.serving(s) for s in index], dtype=bool).reshape(-1, k)
            applies = table[np.asarray(inverse, dtype=np.intp)].T.reshape(k, n)
            every = np.asarray(table.all(axis=0))
        failed = np.zeros((k, n), dtype=bool)
        unknown = np.zeros((k, n), dtype=bool)
        with np.errstate(all="ignore"):
            for row, rule in enumerate(self.rules):
                where = applies[row]
                if not where.any():
                    continue
                no, unsure = rule.expr.outcome(inputs)
                if every[row]:
                    failed[row], unknown[row] = no, unsure
                else:
                    np.logical_and(no, where, out=failed[row])
                    np.logical_and(unsure, where, out=unknown[row])
        return Verdicts(self.names, failed, unknown, applies)

    def evaluate_records(self, records: Sequence[Record]) -> Verdicts:
        """`evaluate` over records as decoded (the columns of the signals rules read)."""
        ts = np.fromiter((r.ts for r in records), dtype=np.float64, count=len(records))
        return self.evaluate(columns(records, self.signals), ts, [r.source for r in records])


def columns(records: Sequence[Record], names: Iterable[str]) -> dict[str, np.ndarray]:
    """name -> (n,) float64 column of the records' values (NaN where null or absent)."""
    return {
        name: np.array([r.signals.get(name) for r in records], dtype=np.float64).reshape(-1)
        for name in names
    }
