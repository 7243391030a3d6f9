"""Score messages say what was known at their record, whatever the batching (issue 26): the
period a signal's rhythm had once the record was applied, and no band before the detector that
describes the signal has one (`null`, as docs/messages.md promises)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from detectors.config import ScoringConfig
from detectors.messages import score_message
from detectors.offline import score_records, scorer_for
from detectors.records import Record
from tests.coupled import START, coupled
from tests.schemas import check

ROWS = 700
CONFIG = ScoringConfig(warmup=50)


@pytest.fixture(scope="module")
def records() -> list[Record]:
    """Three signals with rhythms in samples (40, 40 and 13 values), one a second."""
    values = coupled(ROWS, seed=5)
    return [
        Record("pump-1", START + i, f"t{i}", dict(zip("abc", row, strict=True)))
        for i, row in enumerate(values.tolist())
    ]


def messages(records: Sequence[Record], batch: int) -> list[dict[str, Any]]:
    scored = score_records(scorer_for(None, CONFIG), records, batch=batch)
    return [score_message(res, CONFIG) for res in scored]


@pytest.fixture(scope="module")
def one_by_one(records: list[Record]) -> list[dict[str, Any]]:
    """The reference: each record scored alone, as a stream that trickles would."""
    return messages(records, batch=1)


def first_with_period(msgs: Sequence[dict[str, Any]], signal: str) -> int:
    return next(i for i, m in enumerate(msgs) if "period" in m["signals"][signal])


def test_the_data_has_rhythms_found_after_the_first_batch_began(
    one_by_one: list[dict[str, Any]],
) -> None:
    """The premise of the next test: periods are found mid-way through the first batch."""
    for signal in "abc":
        assert 0 < first_with_period(one_by_one, signal) < 500
    assert one_by_one[-1]["signals"]["a"]["period"]["length"] == pytest.approx(40, rel=0.02)
    assert one_by_one[-1]["signals"]["c"]["period"] == {"length": 13.0, "unit": "samples"}


@pytest.mark.parametrize("batch", [7, 128, 500])
def test_messages_do_not_depend_on_how_records_were_batched(
    records: list[Record], one_by_one: list[dict[str, Any]], batch: int
) -> None:
    """Each record's period is the one known at that record, not at its batch's end."""
    cut = messages(records, batch)
    assert cut == one_by_one
    assert "period" not in cut[0]["signals"]["a"]


def test_a_period_once_found_stays_until_the_detector_changes_it(
    one_by_one: list[dict[str, Any]],
) -> None:
    start = first_with_period(one_by_one, "c")
    assert all("period" in m["signals"]["c"] for m in one_by_one[start:])
    assert not any("period" in m["signals"]["c"] for m in one_by_one[:start])


def test_no_band_before_the_detector_has_one(one_by_one: list[dict[str, Any]]) -> None:
    first = one_by_one[0]["signals"]["a"]
    assert (first["expected"], first["lower"], first["upper"]) == (None, None, None)
    known = [i for i, m in enumerate(one_by_one) if m["signals"]["a"]["expected"] is not None]
    assert 0 < known[0] < CONFIG.warmup
    assert known == list(range(known[0], len(one_by_one)))  # once known, always known
    for m in one_by_one[known[0] :]:
        a = m["signals"]["a"]
        assert a["lower"] < a["expected"] < a["upper"]
    late = np.array(
        [m["signals"]["a"]["upper"] - m["signals"]["a"]["lower"] for m in one_by_one[-100:]]
    )
    assert np.all(late > 0.1)  # a real band around a sine of amplitude 1, not 1e-10 wide
    for m in one_by_one[:5] + one_by_one[-5:]:
        check("score", m)
