"""`ANOMSTREAM_SCORES=anomalous` on a real broker: the worker scores every record but publishes the
full score messages of anomalous and warming records only, with every event and dead letter."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from streams.metrics import Metrics
from streams.processor import Processor
from streams.scoring import build_scorer
from streams.state import SourceStates
from streams.structs import InMessage
from tests.integration.test_pipeline import SPIKE_AT, workload
from tests.schemas import check
from tests.streams.test_processor import TOPICS, FakeSink, FakeStore, Log

pytestmark = pytest.mark.integration


def reference(
    settings: Any, messages: list[tuple[bytes | None, bytes]]
) -> dict[str, list[dict[str, Any]]]:
    """The full score messages and the events of the same records, scored in one process
    without a broker (scores do not depend on batching), less what hashes their position in
    the topic (`input`, event and episode ids: the partitions differ)."""
    scorer = build_scorer(settings)
    log, metrics = Log(), Metrics()
    sink = FakeSink(log)
    states = SourceStates(scorer, FakeStore(log), metrics)
    proc = Processor(scorer, states, sink, TOPICS, settings.limits.limits(), metrics)
    batch = [InMessage("signals", 0, i, k, v) for i, (k, v) in enumerate(messages)]
    asyncio.run(proc.process(batch))
    out: dict[str, list[dict[str, Any]]] = {"scores": [], "anomalies": []}
    for topic, _, value, _ in sink.sent:
        out[topic].append(positionless(orjson.loads(value)))
    return out


def positionless(msg: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in msg.items() if k not in {"input", "id"}}
    if out.get("episode"):
        out["episode"] = {k: v for k, v in out["episode"].items() if k != "id"}
    return out


def by_record(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(msgs, key=lambda m: (m["source"], m["ts"]))


def test_anomalous_publishes_only_anomalous_and_warming_records(lane) -> None:
    run = lane(scores="anomalous")
    assert run.settings.scoring.scores == "anomalous"
    run.create_topics()
    worker = run.worker()
    messages, records = workload()
    messages.append((b"bad", b"{oops"))
    full = reference(run.settings, messages[:-1])
    wanted = [m for m in full["scores"] if m["is_anomaly"] or m["warming_up"]]
    assert 0 < len(wanted) < len(records) // 2  # the premise: most records are left out
    run.produce(messages)
    s = run.settings
    dead = run.read(s.kafka.topic_dlq, 1, timeout=120, settle=1.0)
    assert len(dead) == 1 and dead[0].value == b"{oops"
    scores = run.read(s.kafka.topic_scores, len(wanted), timeout=120, settle=3.0)
    got = [orjson.loads(m.value) for m in scores]
    for msg in got:
        check("score", msg)
    assert by_record([positionless(m) for m in got]) == by_record(wanted)
    events = run.read(s.kafka.topic_anomalies, len(full["anomalies"]), timeout=30, settle=2.0)
    published = [positionless(orjson.loads(m.value)) for m in events]
    assert by_record(published) == by_record(full["anomalies"])  # every event, unchanged
    spike = records[SPIKE_AT]
    assert any(e["source"] == spike["source"] for e in published if e["kind"] == "score")
    assert worker.metric("anomstream_records_total", 'outcome="scored"') == len(records)
