from __future__ import annotations

import json

import pytest
from jsonschema import ValidationError

from detectors.engine import ScoringConfig
from detectors.messages import anomaly_event, score_message
from tests.detectors.test_engine import make_records, score_all
from tests.schemas import NAMES, SCHEMAS, check

EXAMPLES = {
    "record": ["record.json", "record-array.json"],
    "score": ["score.json"],
    "event": ["event.json"],
    "dead_letter": ["dead_letter.json"],
    "episode": ["episode.json"],
}


@pytest.mark.parametrize("name", NAMES)
def test_examples_validate(name: str) -> None:
    for example in EXAMPLES[name]:
        check(name, json.loads((SCHEMAS / "examples" / example).read_text()))


def test_the_schemas_reject_what_they_should() -> None:
    with pytest.raises(ValidationError):
        check("record", {"source": "a", "ts": 1, "signals": {"x": "hot"}})
    with pytest.raises(ValidationError):
        check("score", {"source": "a"})
    with pytest.raises(ValidationError):
        check(
            "event",
            {**json.loads((SCHEMAS / "examples" / "event.json").read_text()), "severity": "huge"},
        )


def test_every_message_the_scorer_builds_validates() -> None:
    records = make_records(900, sources=2, signals=3)
    records[800] = type(records[800])(
        records[800].source, records[800].ts, "spike", {"x0": 90.0, "x1": None}, records[800].origin
    )
    out, _, _ = score_all(records, [300])
    config = ScoringConfig(warmup=50)
    events = 0
    for scored in out:
        assert scored is not None
        check("score", score_message(scored, config, model=None))
        if scored.is_anomaly:
            check("event", anomaly_event(scored, config))
            events += 1
    assert events >= 1
