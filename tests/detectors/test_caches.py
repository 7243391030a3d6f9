"""Caches keyed by source or signal name stay bounded and forget evicted sources."""

from __future__ import annotations

import pytest

from detectors import collect, models, steps
from detectors.engine import Scorer, ScoringConfig
from detectors.models import ModelBook
from detectors.records import Record


def test_the_model_lookup_forgets_evicted_sources_and_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    book = ModelBook(None, [])
    scorer = Scorer(ScoringConfig(), models=book)
    scorer.score_batch([Record(f"s{i}", 0.0, "t", {"x": 1.0}) for i in range(5)], {})
    assert {"s1", "s2"} <= set(book._lookup)
    scorer.forget(["s1", "s2"])
    assert not {"s1", "s2"} & set(book._lookup) and "s3" in book._lookup
    monkeypatch.setattr(models, "LOOKUP_CACHE", 100)
    for i in range(1000):
        book.for_source(f"other-{i}")
    assert len(book._lookup) <= 100


def test_caches_by_signal_name_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collect, "NAME_CACHE", 50)
    monkeypatch.setattr(steps, "NAME_CACHE", 50)
    keys = collect.DetectorKeys(["a", "b"])
    for i in range(500):
        assert keys.of(f"x{i}") == [f"x{i}/a", f"x{i}/b"]
    assert len(keys._keys) <= 50
    selection = steps.Selection([("temp*",), None])
    for i in range(500):
        mask = selection.runs_on([f"temp{i}", f"flow{i}"])[0]
        assert mask is not None and mask.tolist() == [True, False]
    cache = selection._cache[0]
    assert cache is not None and len(cache) <= 50
