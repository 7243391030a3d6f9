"""Avro with a real schema registry (Apicurio's Confluent-compatible API, `harness.registry`) on
a real broker: `replay --format avro` registers its schema and writes the wire format, a
producer's own flat schema is read too, and messages of an unknown schema id or not in the wire
format are dead-lettered with their reason while the rest are scored."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import fastavro
import orjson
import pytest

from harness.registry import Registry, registry_problem
from tests.integration.test_formats import ROWS, TS, csv_file

_PROBLEM = registry_problem()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or ""),
    pytest.mark.skipif(
        os.environ.get("ANOMSTREAM_TEST_BROKER", "tansu") == "tansu",
        reason="the registry runs in the Apache Kafka lane; the Tansu lane stays quick",
    ),
]

FLAT = {  # as a Kafka Connect source or a team's own producer might register it
    "type": "record",
    "name": "PumpReading",
    "namespace": "plant",
    "fields": [
        {"name": "source", "type": "string"},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "temp", "type": "double"},
        {"name": "running", "type": "boolean"},
        {"name": "operator", "type": ["null", "string"], "default": None},
    ],
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with Registry(tmp_path_factory.mktemp("registry")) as started:
        yield started


def register(url: str, subject: str, schema: object) -> int:
    body = orjson.dumps({"schema": orjson.dumps(schema).decode()})
    request = urllib.request.Request(
        f"{url}/subjects/{subject}/versions",
        data=body,
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return int(orjson.loads(answer.read())["id"])


def flat_message(ident: int, i: int) -> bytes:
    out = io.BytesIO(b"\x00" + ident.to_bytes(4, "big"))
    out.seek(5)
    datum = {"source": "plant/pump-9", "ts": (TS + i) * 1000, "temp": 70.5, "running": True}
    fastavro.schemaless_writer(out, fastavro.parse_schema(FLAT), {**datum, "operator": "ana"})
    return out.getvalue()


def test_avro_from_replay_and_from_a_producers_own_schema_is_scored(
    lane, tmp_path: Path, registry: Registry
) -> None:
    run = lane(input_format="avro", registry_url=registry.url)
    run.create_topics()
    run.worker()
    replay = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [
            sys.executable,
            "-m",
            "anomstream",
            "replay",
            str(csv_file(tmp_path / "plant.csv")),
            "--rate",
            "0",
            "--format",
            "avro",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **run.env("cli")},
    )
    assert replay.returncode == 0, replay.stderr
    assert f"produced {ROWS} records" in replay.stdout
    s = run.settings
    flat = register(registry.url, "pumps-value", FLAT)
    stray = b"\x00" + (flat + 1000).to_bytes(4, "big") + b"\x02"
    run.produce(
        [(b"plant/pump-9", flat_message(flat, i)) for i in range(3)]
        + [(b"plant/pump-9", stray), (b"plant/pump-9", b'{"source": "x"}')]
    )
    scores = [
        orjson.loads(m.value)
        for m in run.read(s.kafka.topic_scores, ROWS + 3, timeout=120, settle=2.0)
    ]
    by_source: dict[str, int] = {}
    for score in scores:
        by_source[score["source"]] = by_source.get(score["source"], 0) + 1
    assert by_source == {"plant/pump-0": ROWS // 2, "plant/pump-1": ROWS // 2, "plant/pump-9": 3}
    first = next(sc for sc in scores if sc["source"] == "plant/pump-0")
    assert first["ts"] == "2026-11-24T10:00:00.000Z"
    assert set(first["signals"]) == {"temp", "pressure"}
    nine = next(sc for sc in scores if sc["source"] == "plant/pump-9")
    assert set(nine["signals"]) == {"temp", "running"}  # the string field is no signal
    dead = run.read(s.kafka.topic_dlq, 2, timeout=30, settle=2.0)
    reasons = sorted(dict(d.headers)["error"].decode().split(":")[0] for d in dead)
    assert reasons == ["bad_avro_frame", "unknown_schema_id"]
    assert {d.value for d in dead} == {stray, b'{"source": "x"}'}  # the bytes as they came


def test_replay_without_a_registry_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [
            sys.executable,
            "-m",
            "anomstream",
            "replay",
            str(csv_file(tmp_path / "p.csv")),
            "--format",
            "avro",
            "--broker",
            "127.0.0.1:1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("ANOMSTREAM_")},
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "anomstream: error: replay --format avro: no schema registry: set ANOMSTREAM_REGISTRY_URL"
    ]
