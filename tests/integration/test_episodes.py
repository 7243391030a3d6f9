"""Episodes on a real broker: a worker tells an injected anomaly's episode (open, close) on the
compacted episodes topic, keyed by source, and a replay of the same input sends the same bytes."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from detectors.episodes import EPISODE_GAP
from tests.integration.conftest import dumps, record
from tests.schemas import check

pytestmark = pytest.mark.integration

RUNS = {200: 40.0, 201: 45.0, 203: 60.0, 250: -40.0}
"""Spikes of `x`: one episode over 200-203 (202 is within the gap), another at 250."""


def workload() -> list[tuple[bytes, bytes]]:
    rng = np.random.default_rng(4)
    out = []
    for i in range(300):
        x = RUNS.get(i, float(rng.normal()))
        msg = record("pump-1", i, {"x": x, "y": float(rng.normal(5.0, 1.0))})
        out.append((b"pump-1", dumps(msg)))
    return out


async def cleanup_policy(bootstrap: str, topic: str) -> str | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses: Any = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
    finally:
        await admin.close()
    for response in responses:
        for _error, _message, _kind, _name, entries in response.resources:
            for entry in entries:
                if entry[0] == "cleanup.policy":
                    return str(entry[1])
    return None


def test_a_worker_tells_an_anomalys_episode_and_a_replay_tells_it_alike(lane) -> None:
    run = lane(learn_gate=True)
    first = f"{run.prefix}.episodes"
    run.extra["TOPIC_EPISODES"] = first
    run.create_topics()
    assert asyncio.run(cleanup_policy(run.broker.bootstrap, first)) == "compact"
    worker = run.worker("w1")
    messages = workload()
    run.produce(messages)
    s = run.settings.kafka
    told = run.read(first, 4, timeout=120)
    episodes = [orjson.loads(m.value) for m in told]
    assert [m.key for m in told] == [b"pump-1"] * 4
    assert [(e["status"], e["n"]) for e in episodes] == [
        ("open", 1),
        ("close", 3),
        ("open", 1),
        ("close", 1),
    ]
    for episode in episodes:
        check("episode", episode)
    scores = [orjson.loads(m.value) for m in run.read(s.topic_scores, 300, timeout=60)]
    ts = [m["ts"] for m in sorted(scores, key=lambda m: m["input"]["offset"])]
    assert [e["ts"] for e in episodes] == [
        ts[200],
        ts[203 + EPISODE_GAP + 1],
        ts[250],
        ts[250 + EPISODE_GAP + 1],
    ]
    assert episodes[1]["records"] == 4 and episodes[1]["signals"][0]["name"] == "x"
    published = run.read(s.topic_anomalies, 10**9, timeout=10, settle=0.0)  # all there by now
    events = [orjson.loads(m.value) for m in published]
    # the second run is less extreme and within `realert_after`: its records raise no event
    assert {e["episode"]["id"] for e in events} == {episodes[0]["id"]}
    assert worker.metric("anomstream_episodes_total", 'severity="critical"') == 2
    assert worker.metric("anomstream_open_episodes") == 0
    worker.stop()

    # the same input read again from the start, by a new group with fresh state
    again = f"{run.prefix}.episodes-replay"
    run.extra.update(TOPIC_EPISODES=again, APP_ID=f"{run.prefix}-replay")
    run.worker("w2")
    replayed = run.read(again, 4, timeout=120)
    assert [(m.key, m.value) for m in replayed] == [(m.key, m.value) for m in told]
