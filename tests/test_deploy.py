"""No Docker engine runs here: the compose file and Dockerfile are checked statically."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from streams.brokers import KAFKA_VERSION
from streams.settings import ENV_PREFIX, Settings
from streams.topics import changelog_topic

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_kafka_image_has_the_test_lane_major_minor() -> None:
    major_minor = ".".join(KAFKA_VERSION.split(".")[:2])
    images = {s["image"] for s in COMPOSE["services"].values() if "image" in s}
    kafka = [i for i in images if i.startswith("apache/kafka:")]
    assert kafka, "compose runs Apache Kafka"
    for image in kafka:
        assert image.split(":")[1].startswith(major_minor + "."), image


def test_every_anomstream_variable_is_a_setting() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    for service in COMPOSE["services"].values():
        for key in service.get("environment", {}):
            if key.startswith(ENV_PREFIX):
                assert key[len(ENV_PREFIX) :] in fields, key
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    for key in re.findall(r"ANOMSTREAM_[A-Z_]+", dockerfile):
        assert key[len(ENV_PREFIX) :] in fields, key


def test_wiring_files_and_health() -> None:
    services = COMPOSE["services"]
    worker = services["worker"]
    build = worker["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    broker = worker["environment"]["ANOMSTREAM_BROKER"].removeprefix("kafka://")
    host, port = broker.split(":")
    assert (
        host in services
        and f"INTERNAL://{host}:{port}"
        in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    assert "healthcheck" in services["kafka"]
    assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    script = services["topics"]["command"][0]
    for topic in ("signals", "scores", "anomalies", "signals.dlq", changelog_topic("anomstream")):
        assert topic in script
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "HEALTHCHECK" in dockerfile and "USER anomstream" in dockerfile
    for copied in re.findall(r"^COPY (\S+)", dockerfile, flags=re.M):
        assert (ROOT / copied).exists(), copied
    assert "[train]" not in dockerfile, "the serving image installs without TensorFlow"
