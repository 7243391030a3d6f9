"""A batch's memory is O(records): its sources are scored in parts, with the same scores."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import orjson
import pytest

from detectors.autoencoder import OnnxAutoencoder
from detectors.batch import SourceBatch
from detectors.engine import Scorer, ScoringConfig
from detectors.messages import score_message
from detectors.offline import scorer_for
from detectors.records import Origin, Record
from detectors.results import Scored
from detectors.source_state import SourceState
from tests.coupled import SIGNALS, START, coupled

CONFIG = ScoringConfig(warmup=20)


def mixed(busy: int, singles: int, signals: int = 4, seed: int = 0) -> list[Record]:
    """One source with `busy` records, then `singles` sources with one record each."""
    rng = np.random.default_rng(seed)

    def rec(source: str, i: int, offset: int) -> Record:
        values: dict[str, float | None] = {
            f"x{k}": float(rng.normal(k, 1.0)) for k in range(signals)
        }
        return Record(source, 1.7e9 + i, f"t{i}", values, Origin("signals", 0, offset))

    out = [rec("busy", i, i) for i in range(busy)]
    out += [rec(f"single-{j}", 0, busy + j) for j in range(singles)]
    return out


def interleaved(n: int, sources: int, seed: int = 1) -> list[Record]:
    """Sources of very different rates, interleaved, some with signals of their own."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        j = int(rng.integers(0, sources)) if i % 3 else 0  # source 0 is the busy one
        values: dict[str, float | None] = {"x": float(rng.normal()), "y": float(rng.normal())}
        if j % 4 == 1:
            values[f"own{j}"] = float(rng.normal(5.0, 2.0))
        if i % 17 == 5:
            values["x"] = None
        if i == n // 2:
            values["x"] = 40.0  # a spike
        out.append(Record(f"s{j}", 1.7e9 + i, f"t{i}", values, Origin("signals", i % 2, i)))
    return out


def messages(scorer: Scorer, records: list[Record], cuts: list[int]) -> list[bytes | None]:
    states: dict[str, SourceState] = {}
    out: list[Scored | None] = []
    for a, b in zip([0, *cuts], [*cuts, len(records)], strict=True):
        out.extend(scorer.score_batch(records[a:b], states))
    return [None if r is None else orjson.dumps(score_message(r, scorer.config)) for r in out]


def tight(scorer: Scorer, max_cells: int) -> Scorer:
    scorer.max_cells, scorer.cell_slack = max_cells, 0.0
    return scorer


def test_a_busy_source_among_many_single_record_sources_stays_within_a_memory_bound() -> None:
    # Laid out as one (steps x series) matrix this is 2,000 steps x 8,004 series (~5 GB traced).
    records = mixed(2000, 2000)
    scorer = Scorer(CONFIG)
    scorer.prepare()
    tracemalloc.start()
    try:
        results = scorer.score_batch(records, {})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert all(r is not None for r in results)
    assert peak < 200e6, f"peak {peak / 1e6:.0f} MB"


@pytest.mark.parametrize("max_cells", [0, 40, 500])
def test_scores_do_not_depend_on_the_cell_budget(max_cells: int) -> None:
    records = interleaved(1500, 23)
    cuts = [400, 401, 1100]
    whole = messages(Scorer(CONFIG), records, cuts)
    assert all(m is not None for m in whole)
    assert messages(tight(Scorer(CONFIG), max_cells), records, cuts) == whole


def test_the_mixed_batch_in_parts_scores_as_in_small_batches() -> None:
    records = mixed(300, 200)
    at_once = messages(Scorer(CONFIG), records, [])
    assert messages(Scorer(CONFIG), records, list(range(1, len(records)))) == at_once


def test_a_batch_that_fits_is_one_part_as_it_is_and_each_source_is_whole_in_one() -> None:
    from detectors.batch import parts  # here: the rest of the module runs on older code too

    suite = Scorer(CONFIG).suite

    def group(name: str, rows: int, signals: int) -> SourceBatch:
        state = SourceState.new(suite)
        state.add_signals([f"x{k}" for k in range(signals)], suite)
        return SourceBatch(name, state, list(range(rows)))

    even = [group(f"e{j}", 20, 8) for j in range(100)]
    (only,) = parts(even, max_cells=1000)  # 16,000 cells, all filled: never split
    assert only is even
    skewed = [group("busy", 50, 2), *(group(f"one{j}", 1, 3) for j in range(30))]
    cut = parts(skewed, max_cells=200, slack=0.0)
    assert len(cut) > 1
    assert sorted(g.source for p in cut for g in p) == sorted(g.source for g in skewed)
    for p in cut:
        steps = max(len(g.rows) for g in p)
        assert len(p) == 1 or steps * sum(len(g.state.signals) for g in p) <= 200
        assert [skewed.index(g) for g in p] == sorted(skewed.index(g) for g in p)


@pytest.fixture(scope="module")
def model(model_dir: Path) -> OnnxAutoencoder:
    return OnnxAutoencoder.load(model_dir)


def test_the_autoencoders_verdicts_do_not_depend_on_the_cell_budget(model) -> None:
    values = coupled(400, seed=5)
    records: list[Record] = []
    for i, row in enumerate(values.tolist()):
        for j in range(1 + (i % 5 == 0) * 6):  # pump-0 on every row, six more now and then
            signals: dict[str, float | None] = dict(zip(SIGNALS, row, strict=True))
            origin = Origin("signals", 0, len(records))
            records.append(Record(f"pump-{j}", START + i, f"t{i}", signals, origin))
    whole = messages(scorer_for(model, CONFIG), records, [700])
    assert any(b'"autoencoder"' in m for m in whole if m is not None)
    assert messages(tight(scorer_for(model, CONFIG), 0), records, [700]) == whole
