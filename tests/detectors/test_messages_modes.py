"""The compact score message (`scores` = compact) and the batch encoders: the compact form keeps
the verdict and each signal's score and validates against the score schema, which still holds a
full message to all of its fields."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from jsonschema import ValidationError

from detectors.config import ScoringConfig
from detectors.messages import (
    compact_score_bytes,
    compact_score_message,
    score_bytes,
    score_message,
)
from detectors.results import Scored
from tests.detectors.test_engine import make_records, score_all
from tests.schemas import check

CONFIG = ScoringConfig(warmup=50)


@pytest.fixture(scope="module")
def scored() -> list[Scored]:
    records = make_records(400)
    records[350].signals["x1"] = 40.0  # a spike after the warm-up
    records[351].signals["x2"] = None  # a missing value
    out, _, _ = score_all(records, [123, 300], CONFIG)
    return [res for res in out if res is not None]


def test_the_batch_encoders_are_orjson_of_the_messages(scored: list[Scored]) -> None:
    keys = [res.record.source.encode() for res in scored]
    full = [orjson.dumps(score_message(res, CONFIG, "m-1")) for res in scored]
    compact = [orjson.dumps(compact_score_message(res, CONFIG)) for res in scored]
    assert score_bytes(scored, CONFIG, "m-1") == list(zip(keys, full, strict=True))
    assert compact_score_bytes(scored, CONFIG) == list(zip(keys, compact, strict=True))


def test_compact_is_the_full_message_less_what_it_leaves_out(scored: list[Scored]) -> None:
    assert any(res.is_anomaly for res in scored) and any(res.missing for res in scored)
    for res in scored:
        full, small = score_message(res, CONFIG), compact_score_message(res, CONFIG)
        check("score", full)
        check("score", small)
        top = ["source", "ts", "score", "is_anomaly", "threshold", "signals", "warming_up", "input"]
        assert list(small) == top
        assert {k: small[k] for k in top if k != "signals"} == {
            k: full[k] for k in top if k != "signals"
        }
        assert small["signals"] == {n: {"score": s["score"]} for n, s in full["signals"].items()}


def full_message(scored: list[Scored]) -> dict[str, Any]:
    return score_message(scored[-1], CONFIG)


@pytest.mark.parametrize(
    "breaks",
    [
        lambda m: m.pop("detectors"),  # a full message keeps all of its fields
        lambda m: m.pop("check_failures"),
        lambda m: m["signals"]["x0"].pop("value"),
        lambda m: m["signals"]["x0"].pop("lower"),
        lambda m: m["signals"]["x0"].pop("score"),
        lambda m: m.pop("signals"),
    ],
)
def test_the_schema_still_holds_a_full_message_to_its_fields(
    scored: list[Scored], breaks: Any
) -> None:
    msg = full_message(scored)
    check("score", msg)
    breaks(msg)
    with pytest.raises(ValidationError):
        check("score", msg)


def test_a_compact_message_with_part_of_the_full_form_is_refused(scored: list[Scored]) -> None:
    small = compact_score_message(scored[-1], CONFIG)
    with pytest.raises(ValidationError):
        check("score", {**small, "model": None})  # model without detectors
    with pytest.raises(ValidationError):
        check("score", {**small, "signals": {"x0": {"score": 0.5, "value": 1.0}}})  # no band
