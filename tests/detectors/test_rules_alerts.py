"""`judge` from the scorer's batch layout, vectorised, gives exactly the verdicts and runs of
the plain per-record reading of the rules (kept here as the reference)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from detectors import engine
from detectors.batch import Layout, SourceBatch, group_batch, lay_out
from detectors.engine import Scorer, ScoringConfig
from detectors.records import Origin, Record
from detectors.registry import default_suite
from detectors.results import Scored
from detectors.rules import RuleBook, parse_rules
from detectors.rules_alerts import RANK, batch_columns, judge
from detectors.source_state import SourceState

BOOK = [
    {"name": "hot", "expr": "temp < 100", "severity": "high"},
    {"name": "low_flow", "expr": "flow > 0", "sources": "pump-*"},
    {"name": "ratio", "expr": "flow == 0 or temp / flow < 200", "severity": "critical"},
    {"name": "night", "expr": "hour >= 6 or temp < 90", "sources": ["*", "!fan-2"]},
]


def reference(
    book: RuleBook,
    groups: Sequence[SourceBatch],
    records: Sequence[Record],
    results: Sequence[Any],
) -> None:
    """The per-record reading of rules_alerts: what the vectorised judge must equal."""
    rows = [i for g in groups for i in g.rows]
    verdicts = book.evaluate_records([records[i] for i in rows])
    failures, unknowns = verdicts.failures(), verdicts.unknowns()
    severity = {r.name: r.severity for r in book.rules}
    k = 0
    for group in groups:
        previous = group.state.failing
        for i in group.rows:
            failed, unsure = failures[k], unknowns[k]
            k += 1
            res = results[i]
            if unsure:
                res.check_unknown = unsure
            if failed:
                res.check_failures = failed
                new = [name for name in failed if name not in previous]
                if new:
                    res.rule_alert = new
                    res.rule_severity = max((severity[n] for n in new), key=RANK.__getitem__)
            if unsure and previous:
                failed = failed + [n for n in previous if n in unsure and n not in failed]
            previous = failed
        group.state.failing = previous


class Result:
    """The fields judge fills."""

    def __init__(self) -> None:
        self.check_failures: list[str] = []
        self.check_unknown: list[str] = []
        self.rule_alert: list[str] = []
        self.rule_severity = "medium"

    def seen(self) -> tuple[Any, ...]:
        return (self.check_failures, self.check_unknown, self.rule_alert, self.rule_severity)


def random_records(rng: np.random.Generator, n: int) -> list[Record]:
    sources = ["pump-1", "pump-2", "fan-1", "fan-2", "valve"]
    out = []
    for i in range(n):
        signals: dict[str, float | None] = {}
        for name in ("temp", "flow"):
            draw = rng.random()
            if draw < 0.1:
                continue  # absent
            if draw < 0.2:
                signals[name] = None
            elif name == "temp":
                signals[name] = float(rng.choice([50.0, 95.0, 150.0]))
            else:
                signals[name] = float(rng.choice([0.0, 0.1, 1.0]))
        if rng.random() < 0.1:
            signals["other"] = 1.0
        ts = 1_767_225_600.0 + 600.0 * i + float(rng.integers(-3, 3)) * 3600.0
        out.append(Record(str(rng.choice(sources)), ts, f"t{i}", signals, Origin("s", 0, i)))
    return out


def grouped(
    records: Sequence[Record], states: dict[str, SourceState]
) -> tuple[list[SourceBatch], Layout]:
    suite = default_suite()
    groups = group_batch(records, states, suite, lambda: SourceState.new(suite)).groups
    return groups, lay_out(groups, records)


def fresh_states(rng: np.random.Generator, book: RuleBook) -> dict[str, SourceState]:
    """Sources already in failing runs (and one rule the book no longer has)."""
    suite = default_suite()
    states = {}
    for source in ("pump-1", "fan-1", "valve"):
        state = SourceState.new(suite)
        state.failing = [n for n in [*book.names, "gone"] if rng.random() < 0.5]
        states[source] = state
    return states


@pytest.mark.parametrize("seed", range(12))
def test_judge_from_the_layout_equals_the_per_record_reading(seed: int) -> None:
    rng = np.random.default_rng(seed)
    book = RuleBook(parse_rules(BOOK))
    records = random_records(rng, int(rng.integers(1, 120)))
    initial = fresh_states(rng, book)
    outcomes = []
    for use_layout in (False, True, None):
        states = _copy(initial)
        groups, layout = grouped(records, states)
        results = [Result() for _ in records]
        if use_layout is None:
            reference(book, groups, records, results)
        else:
            judge(book, groups, records, results, layout if use_layout else None)  # type: ignore[arg-type]
        failing = {s: sorted(v.failing) for s, v in states.items()}
        outcomes.append(([r.seen() for r in results], failing))
    assert outcomes[0] == outcomes[2]
    assert outcomes[1] == outcomes[2]


def _copy(states: dict[str, SourceState]) -> dict[str, SourceState]:
    suite = default_suite()
    out = {}
    for source, state in states.items():
        twin = SourceState.new(suite)
        twin.failing = list(state.failing)
        out[source] = twin
    return out


def test_batch_columns_read_the_values_and_times_of_the_records() -> None:
    records = [
        Record("a", 10.0, "", {"x": 1.0, "y": None}),
        Record("b", 11.0, "", {"y": 2.0}),
        Record("a", 12.0, "", {"x": 3.0}),
    ]
    groups, layout = grouped(records, {})
    signals, ts, sources, counts = batch_columns(layout, groups, ["x", "y", "z"])
    # rows come group by group: a's two records, then b's
    assert np.array_equal(signals["x"], [1.0, 3.0, np.nan], equal_nan=True)
    assert np.array_equal(signals["y"], [np.nan, np.nan, 2.0], equal_nan=True)
    assert np.isnan(signals["z"]).all()
    assert ts.tolist() == [10.0, 12.0, 11.0]
    assert (sources, counts) == (["a", "b"], [2, 1])


@pytest.fixture
def layout_judge(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The scorer with `judge` handed the part's layout (the engine's call once it passes it)."""
    seen: list[Layout] = []

    def capture(groups: Sequence[SourceBatch], records: Sequence[Record]) -> Layout:
        layout = lay_out(groups, records)
        seen.append(layout)
        return layout

    def with_layout(
        book: RuleBook, groups: Any, records: Any, results: Any, layout: Any = None
    ) -> None:
        judge(book, groups, records, results, seen[-1])

    monkeypatch.setattr(engine, "lay_out", capture)
    monkeypatch.setattr(engine, "judge", with_layout)
    yield


def scored_fields(out: Sequence[Scored | None]) -> list[tuple[Any, ...]]:
    return [
        (r.check_failures, r.check_unknown, r.rule_alert, r.rule_severity)
        for r in out
        if r is not None
    ]


def score(records: Sequence[Record], batch: int) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    scorer = Scorer(ScoringConfig(warmup=20), rules=RuleBook(parse_rules(BOOK)))
    states: dict[str, SourceState] = {}
    out: list[Scored | None] = []
    for start in range(0, len(records), batch):
        out += scorer.score_batch(records[start : start + batch], states)
    return scored_fields(out), {s: sorted(v.failing) for s, v in states.items()}


def test_the_scorer_judges_alike_from_records_and_from_its_layout(
    request: pytest.FixtureRequest,
) -> None:
    records = random_records(np.random.default_rng(7), 400)
    plain = [score(records, b) for b in (400, 37)]
    request.getfixturevalue("layout_judge")
    laid = [score(records, b) for b in (400, 37)]
    assert plain[0] == plain[1] == laid[0] == laid[1]
    assert any(f[0] for f in plain[0][0]) and any(f[1] for f in plain[0][0])
