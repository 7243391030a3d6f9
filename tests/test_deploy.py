"""No Docker engine runs here: the compose file, the Dockerfile, the Prometheus and Grafana files
are checked statically, with promtool where it is installed (CI installs it)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.brokers import KAFKA_VERSION
from streams.metrics import Metrics
from streams.settings import ENV_PREFIX, Settings
from streams.topics import changelog_topic

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
PROMETHEUS = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
ALERTS = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
DASHBOARD = json.loads((ROOT / "deploy/grafana/dashboards/anomstream.json").read_text())


def test_kafka_image_has_the_test_lane_major_minor() -> None:
    major_minor = ".".join(KAFKA_VERSION.split(".")[:2])
    kafka = [
        s["image"] for s in SERVICES.values() if s.get("image", "").startswith("apache/kafka:")
    ]
    assert kafka, "compose runs Apache Kafka"
    for image in kafka:
        assert image.split(":")[1].startswith(major_minor + "."), image


def test_every_anomstream_variable_is_a_setting() -> None:
    fields = {name.upper() for name in Settings.names()}
    used = re.findall(r"ANOMSTREAM_[A-Z_]+", DOCKERFILE)
    for service in SERVICES.values():
        used += [k for k in service.get("environment", {}) if k.startswith(ENV_PREFIX)]
    assert used
    for key in used:
        assert key[len(ENV_PREFIX) :] in fields, key


def test_services_files_ports_and_health_agree() -> None:
    for name, service in SERVICES.items():
        for dep in service.get("depends_on", {}):
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            assert (ROOT / host).exists(), f"{name} mounts missing {host}"
        if "build" in service:
            assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    for name in ("kafka", "worker", "prometheus"):
        assert "healthcheck" in SERVICES[name], name
    assert (
        SERVICES["worker"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    )
    assert SERVICES["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert SERVICES["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    # the worker's advertised listener, metrics port, scrape target and datasource line up
    broker = SERVICES["worker"]["environment"]["ANOMSTREAM_BROKER"].removeprefix("kafka://")
    host, port = broker.split(":")
    assert (
        f"INTERNAL://{host}:{port}"
        in SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    metrics_port = int(SERVICES["worker"]["environment"]["ANOMSTREAM_METRICS_PORT"])
    (job,) = PROMETHEUS["scrape_configs"]
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["worker"] and sd["port"] == metrics_port
    datasource = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert (
        datasource["url"] == "http://prometheus:9090"
        and "9090:9090" in SERVICES["prometheus"]["ports"]
    )
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.endswith("/anomstream.json")
    script = SERVICES["topics"]["command"][0]
    for topic in ("signals", "scores", "anomalies", "signals.dlq", changelog_topic("anomstream")):
        assert topic in script


def test_dockerfile_serving_stage_has_no_tensorflow() -> None:
    serve, _, train = DOCKERFILE.partition(" AS train")
    extras = re.compile(r"\.\[([a-z,]+)\]")
    assert all("train" not in found.split(",") for found in extras.findall(serve))
    assert any("train" in found.split(",") for found in extras.findall(train))
    assert "COPY training" not in serve and "COPY training" in train
    assert "HEALTHCHECK" in serve and "/healthz" in serve and "USER anomstream" in serve
    for copied in re.findall(r"^COPY (\S+)", DOCKERFILE, flags=re.M):
        assert (ROOT / copied).exists(), copied


def metric_names() -> set[str]:
    metrics = Metrics()
    names: set[str] = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    for family in metrics.registry.collect():  # labelled series may have no sample yet
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def expressions() -> list[str]:
    exprs = [rule["expr"] for group in ALERTS["groups"] for rule in group["rules"]]
    exprs += [t["expr"] for panel in DASHBOARD["panels"] for t in panel["targets"]]
    return exprs


def test_every_metric_in_the_dashboard_and_the_alerts_exists() -> None:
    known = metric_names()
    used = {name for e in expressions() for name in re.findall(r"anomstream_[a-z_]+", e)}
    assert len(used) >= 10
    assert used <= known, f"unknown metrics: {sorted(used - known)}"


def test_the_dashboard_has_the_panels_users_need() -> None:
    titles = " ".join(p["title"].lower() for p in DASHBOARD["panels"])
    for words in (
        "records/s",
        "severity",
        "score distribution",
        "latency",
        "event-time lag",
        "consumer lag",
        "dead letters",
        "warming",
        "model",
    ):
        assert words in titles, words
    assert any(p["type"] == "heatmap" for p in DASHBOARD["panels"])


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (CI installs it)"
)
def test_promtool_accepts_the_config_and_the_rules(tmp_path: Path) -> None:
    rules = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        ["promtool", "check", "rules", str(ROOT / "deploy/prometheus/alerts.yml")],
        capture_output=True,
        text=True,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "5 rules found" in rules.stdout
    config = tmp_path / "prometheus.yml"
    (tmp_path / "alerts.yml").write_text((ROOT / "deploy/prometheus/alerts.yml").read_text())
    config.write_text(
        (ROOT / "deploy/prometheus/prometheus.yml")
        .read_text()
        .replace("/etc/prometheus/alerts.yml", str(tmp_path / "alerts.yml"))
    )
    checked = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        ["promtool", "check", "config", str(config)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
