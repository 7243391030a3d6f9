"""What validation rules cost on the hot path: µs per record per rule, by number of rules.

A micro-batch of `--records` records (10 sources) x 8 signals (2 % missing) is judged by 1, 5
and 20 rules of typical shape (bands, chained ranges, ratios, functions, `hour`), through
`RuleBook.evaluate` (records of several sources, and of one source), then with the per-record
`check_failures` lists made (`Verdicts.failures`), then from decoded `Record`s (the columns
gathered too). Then the scorer's own step, `rules_alerts.judge` with its failing runs and the
results' lists: from the records (`judge/rec`), and from the batch layout the scorer already
holds (`judge`, the hot path). Compiling is once per rule at start-up; printed for scale.

Usage: `python -m bench.rules [--records 100] [--rules 1,5,20] [--repeat 2000]`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from detectors.batch import group_batch, lay_out
from detectors.records import Record
from detectors.registry import default_suite
from detectors.results import Scored
from detectors.rules import RuleBook, parse_rules
from detectors.rules_alerts import judge
from detectors.source_state import SourceState

SIGNALS = ("s0", "s1", "s2", "s3", "s4", "s5", "s6", "flow rate")
SHAPES = (
    "s0 < {c}",
    "abs(s1 - 3) < 0.{d} and s2 > 0",
    "0 <= s3 <= {c}",
    "max(s4, s5) - min(s4, s5) < {d}",
    "hour >= 6 or s6 < {d}",
    's("flow rate") / s2 < {d}',
    "sqrt(s0 ** 2 + s1 ** 2) < {c}",
    "s2 == 0 or log(abs(s2)) < {d}",
)


def rule_items(count: int) -> list[dict[str, str]]:
    return [
        {"name": f"r{i}", "expr": SHAPES[i % len(SHAPES)].format(c=100 + i, d=1 + i % 9)}
        for i in range(count)
    ]


def batch(records: int, seed: int = 1) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    values = rng.normal(3.0, 2.0, (records, len(SIGNALS)))
    values[rng.random(values.shape) < 0.02] = np.nan
    columns = {name: values[:, j].copy() for j, name in enumerate(SIGNALS)}
    ts = 1_767_225_600.0 + np.arange(records, dtype=np.float64)
    return columns, ts, [f"pump-{i % 10}" for i in range(records)]


def per_call(fun: Callable[[], object], repeat: int) -> float:
    """Best of 5 runs of `repeat` calls, seconds per call."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            fun()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--rules", default="1,5,20")
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    columns, ts, sources = batch(args.records)
    records = [
        Record(
            sources[i],
            float(ts[i]),
            "",
            {k: (None if np.isnan(v[i]) else float(v[i])) for k, v in columns.items()},
        )
        for i in range(args.records)
    ]
    n = args.records
    suite = default_suite()
    states: dict[str, SourceState] = {}
    groups = group_batch(records, states, suite, lambda: SourceState.new(suite)).groups
    layout = lay_out(groups, records)
    results = [Scored.__new__(Scored) for _ in records]  # judge only sets its fields
    print(f"{n} records x {len(SIGNALS)} signals; µs per record per rule (best of 5)")
    heads = ("sources", "1 source", "+lists", "records", "judge/rec", "judge")
    print(f"{'rules':>5} " + " ".join(f"{h:>9}" for h in heads) + f" {'compile':>11}")
    for count in (int(c) for c in args.rules.split(",")):
        items = rule_items(count)
        compile_s = per_call(partial(parse_rules, items), max(1, args.repeat // 20))
        book = RuleBook(parse_rules(items))
        book.evaluate(columns, ts, sources)  # fill the per-source cache, as a running stream has

        def lists(book: RuleBook = book) -> object:
            return book.evaluate(columns, ts, sources).failures()

        def from_records(book: RuleBook = book) -> object:
            return book.evaluate_records(records).failures()

        timings = [
            per_call(partial(book.evaluate, columns, ts, sources), args.repeat),
            per_call(partial(book.evaluate, columns, ts, "pump-1"), args.repeat),
            per_call(lists, args.repeat),
            per_call(from_records, args.repeat),
            per_call(partial(judge, book, groups, records, results), args.repeat),
            per_call(partial(judge, book, groups, records, results, layout), args.repeat),
        ]
        cells = " ".join(f"{1e6 * t / n / count:9.3f}" for t in timings)
        print(f"{count:5d} {cells} {1e6 * compile_s / count:8.1f} µs")


if __name__ == "__main__":
    main()
