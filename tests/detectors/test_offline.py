"""Offline events are the stream's: `detectors.offline.events` against the worker's processor
fed the same records (in-memory sink and store, no broker), field for field."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from detectors.autoencoder import OnnxAutoencoder
from detectors.config import ScoringConfig, SuiteOptions
from detectors.csvdata import read_table
from detectors.messages import event_id, score_message
from detectors.models import ModelBook
from detectors.offline import culprit, events, flat_rows, score_records, scorer_for
from detectors.records import Origin, Record
from detectors.registry import default_suite
from streams.codec import Limits
from streams.metrics import Metrics
from streams.processor import Processor
from streams.scoring import build_scorer
from streams.settings import load_settings
from streams.state import SourceStates
from streams.structs import InMessage
from tests.coupled import START, coupled, write_csv, zero_crossing
from tests.schemas import check
from tests.streams.test_processor import TOPICS, FakeSink, FakeStore, Log

ROWS = 900
BATCH = 128
"""Messages per micro-batch through the processor (offline scores in batches of 500)."""


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[Record]:
    """A correlation break (the autoencoder's) plus a spike in `c` (a univariate event)."""
    values = coupled(ROWS, seed=5, break_at=zero_crossing(650))
    values[400, 2] = 9.0
    path = write_csv(tmp_path_factory.mktemp("offline") / "pump-1.csv", values)
    return read_table(path).records()


def through_processor(
    records: list[Record], model_dir: Path, root: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The score messages and events the worker's processor publishes for `records`, produced
    one per message on partition 0 at offsets 0.. and scored `BATCH` messages at a time."""
    shutil.copytree(model_dir, root / "models" / model_dir.name)
    settings = load_settings(environ={})
    scorer = build_scorer(settings, ModelBook(root / "models"))  # as streams.app builds it
    log, metrics = Log(), Metrics()
    sink = FakeSink(log)
    states = SourceStates(scorer, FakeStore(log), metrics)
    proc = Processor(scorer, states, sink, TOPICS, Limits(), metrics, wall=lambda: START + 1e6)
    messages = [
        InMessage(
            TOPICS.signals,
            0,
            i,
            rec.source.encode(),
            orjson.dumps({"source": rec.source, "ts": rec.ts_text, "signals": rec.signals}),
        )
        for i, rec in enumerate(records)
    ]

    async def run() -> None:
        for start in range(0, len(messages), BATCH):
            await proc.process(messages[start : start + BATCH])
            await proc.states.flush()

    asyncio.run(run())
    sent = [(topic, orjson.loads(value)) for topic, _, value, _ in sink.sent]
    scores = [msg for topic, msg in sent if topic == TOPICS.scores]
    found = [msg for topic, msg in sent if topic == TOPICS.anomalies]
    return scores, found


def positionless(event: dict[str, Any]) -> dict[str, Any]:
    """The event without what its input position decides: ids and provenance."""
    out = {k: v for k, v in event.items() if k not in {"id", "input"}}
    out["episode"] = {k: v for k, v in event["episode"].items() if k != "id"}
    return out


@pytest.fixture(scope="module")
def stream(
    records: list[Record], model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return through_processor(records, model_dir, tmp_path_factory.mktemp("stream"))


@pytest.fixture(scope="module")
def config(model_dir: Path) -> ScoringConfig:
    """What `detect` scores with: the model's target_fap (the worker's default here)."""
    model = OnnxAutoencoder.load(model_dir)
    return ScoringConfig(target_fap=model.spec.info["target_fap"])


def test_events_are_the_processors_field_for_field(
    records: list[Record], model_dir: Path, config: ScoringConfig, stream: Any
) -> None:
    _, published = stream
    kinds = {tuple(e["detectors"]) for e in published}
    assert ("autoencoder",) in kinds, kinds  # the break
    assert any(e["signals"][0]["name"] == "c" for e in published)  # the spike
    # the same records with the positions the processor read them at
    placed = [replace(r, origin=Origin(TOPICS.signals, 0, i)) for i, r in enumerate(records)]
    model = OnnxAutoencoder.load(model_dir)
    scored = score_records(scorer_for(model, config), placed)
    offline = events(scored, config)
    assert list(offline.values()) == published
    for event in published:
        check("event", event)


def test_without_input_positions_only_the_ids_differ(
    records: list[Record], model_dir: Path, config: ScoringConfig, stream: Any
) -> None:
    """A file's records have no input position: ids hash source, ts and kind (messages.md)."""
    _, published = stream
    scored = score_records(scorer_for(OnnxAutoencoder.load(model_dir), config), records)
    offline = events(scored, config)

    assert [positionless(e) for e in offline.values()] == [positionless(e) for e in published]
    for i, event in offline.items():
        rec = scored[i].record
        assert event["id"] == event_id(rec.source, rec.ts_text, "score")
        assert "input" not in event
        check("event", event)
    assert len({e["id"] for e in offline.values()}) == len(offline)


def test_flat_rows_carry_each_records_event(
    records: list[Record], model_dir: Path, config: ScoringConfig
) -> None:
    scorer = scorer_for(OnnxAutoencoder.load(model_dir), config)
    scored = score_records(scorer, records)
    found = events(scored, config)
    rows = list(flat_rows(scored, scorer))
    assert rows == list(flat_rows(scored, scorer, found))
    assert [i for i, row in enumerate(rows) if row["event"]] == list(found)
    for i, row in enumerate(rows):
        event = found.get(i)
        assert row["event"] == (event["id"] if event else "")
        assert row["severity"] == (event["severity"] if event else "")
        assert row["culprit"] == culprit(event)
        assert bool(row["episode"]) == bool(row["is_anomaly"])
        if event:
            assert row["episode"] == event["episode"]["id"]
            assert row["culprit"] == event["signals"][0]["name"]
    assert np.mean([bool(row["event"]) for row in rows]) < 0.1


def test_score_messages_are_the_processors_field_for_field(
    records: list[Record], model_dir: Path, config: ScoringConfig, stream: Any
) -> None:
    """Batches of 500 offline, of 128 in the stream: the same messages, periods and bands
    included (each says what was known at its record, issue 26)."""
    published, _ = stream
    placed = [replace(r, origin=Origin(TOPICS.signals, 0, i)) for i, r in enumerate(records)]
    scored = score_records(scorer_for(OnnxAutoencoder.load(model_dir), config), placed)
    offline = [score_message(res, config) for res in scored]
    assert offline == published
    found = [i for i, m in enumerate(published) if "period" in m["signals"]["c"]]
    assert 0 < found[0] < BATCH  # found within the first batch of either: its end would show
    assert published[0]["signals"]["a"]["expected"] is None  # no band before there is one


def test_flat_rows_write_the_period_as_two_columns_and_null_as_empty(
    records: list[Record],
) -> None:
    config = ScoringConfig(warmup=50)
    scorer = scorer_for(None, config)
    scored = score_records(scorer, records)
    rows = list(flat_rows(scored, scorer))
    msgs = [score_message(res, config) for res in scored]
    for row, msg in zip(rows, msgs, strict=True):
        for name, entry in msg["signals"].items():
            period = entry.get("period")
            assert f"{name}.period" not in row
            assert row[f"{name}.period_length"] == (period["length"] if period else "")
            assert row[f"{name}.period_unit"] == (period["unit"] if period else "")
            assert row[f"{name}.expected"] == (
                "" if entry["expected"] is None else entry["expected"]
            )
    assert (rows[0]["c.period_length"], rows[0]["c.expected"], rows[0]["c.upper"]) == ("", "", "")
    assert rows[-1]["c.period_length"] == 13.0 and rows[-1]["c.period_unit"] == "samples"
    assert all(isinstance(v, str | int | float) for row in rows for v in row.values())


def test_without_a_rhythm_detector_there_are_no_period_columns(records: list[Record]) -> None:
    config = ScoringConfig()
    scorer = scorer_for(None, config, default_suite(SuiteOptions(periods=())))
    rows = list(flat_rows(score_records(scorer, records[:50]), scorer))
    assert not any("period" in key for key in rows[0])


def test_culprit_is_empty_without_an_event_or_signals() -> None:
    assert culprit(None) == ""
    assert culprit({"signals": []}) == ""
    assert culprit({"signals": [{"name": "b"}, {"name": "a"}]}) == "b"
