"""The worker, `replay` and `tail` through TLS and SASL on Apache Kafka (its SSL listener wants a
client certificate; its SASL_SSL listener takes SCRAM and PLAIN logins), and wrong credentials
as one line and exit code 1, quickly, not a retry loop.

Apache Kafka only (`ANOMSTREAM_TEST_BROKER=kafka`): Tansu has no TLS listener. The module starts
its own broker with the extra listeners (harness.kafka, certificates from harness.certs).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from anomstream.replay import replay
from anomstream.tail import tail
from detectors.records import Record
from harness.certs import Certs, make_certs, openssl_problem
from harness.kafka import KafkaBroker
from harness.kafka_dist import kafka_available
from harness.probe import free_port
from harness.workerproc import WorkerProcess, worker_env
from streams.settings import Settings, load_settings
from tests.integration.conftest import SPEC

pytestmark = [
    pytest.mark.integration,
    pytest.mark.kafka,
    pytest.mark.skipif(SPEC != "kafka", reason="TLS and SASL listeners: Apache Kafka lane only"),
    pytest.mark.skipif(openssl_problem() is not None, reason=str(openssl_problem())),
]

USER, PASSWORD = "alice", "alice-Secret-7"
RECORDS = 60


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[KafkaBroker]:
    ok, why = kafka_available()
    if not ok:
        pytest.skip(why)
    broker = KafkaBroker(tmp_path_factory.mktemp("secured"), certs=certs, users={USER: PASSWORD})
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def mtls(broker: KafkaBroker, certs: Certs) -> dict[str, str]:
    return {
        "BROKER": broker.ssl_bootstrap,
        "SECURITY_PROTOCOL": "SSL",
        "SECURITY_SSL_CAFILE": str(certs.ca),
        "SECURITY_SSL_CERTFILE": str(certs.client_cert),
        "SECURITY_SSL_KEYFILE": str(certs.client_key),
    }


def scram(broker: KafkaBroker, certs: Certs, password_file: Path, mechanism: str) -> dict[str, str]:
    return {
        "BROKER": broker.sasl_bootstrap,
        "SECURITY_PROTOCOL": "SASL_SSL",
        "SECURITY_SSL_CAFILE": str(certs.ca),
        "SECURITY_SASL_MECHANISM": mechanism,
        "SECURITY_SASL_USERNAME": USER,
        "SECURITY_SASL_PASSWORD_FILE": str(password_file),
    }


def env_for(tmp: Path, name: str, security: dict[str, str]) -> dict[str, str]:
    prefix = f"sec-{name}-{int(time.time() * 1000) % 10**8}"
    env = worker_env(
        security["BROKER"],
        free_port(),
        tmp / name / "data",
        app_id=f"{prefix}-app",
        TOPIC_SIGNALS=f"{prefix}.signals",
        TOPIC_SCORES=f"{prefix}.scores",
        TOPIC_ANOMALIES=f"{prefix}.anomalies",
        TOPIC_DLQ=f"{prefix}.dlq",
        WARMUP=100,
    )
    env.update({f"ANOMSTREAM_{k}": v for k, v in security.items() if k != "BROKER"})
    return env


def records(n: int) -> list[Record]:
    start = 1795514400.0
    return [
        Record(
            f"pump-{i % 3}",
            start + i,
            datetime.fromtimestamp(start + i, UTC).isoformat().replace("+00:00", "Z"),
            {"temp": 60.0 + (i % 7), "pressure": 3.0},
        )
        for i in range(n)
    ]


def scores_through(settings: Settings, n: int) -> list[dict[str, object]]:
    """The score messages, read by `anomstream tail` (JSON lines) over the same security."""
    out = StringIO()
    console = Console(file=out, width=10_000, highlight=False)
    asyncio.run(tail(settings, "scores", True, n, 60.0, True, console=console))
    return [orjson.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def worker_scores_through(env: dict[str, str], workdir: Path) -> None:
    settings = load_settings(environ=env)
    worker = WorkerProcess(env, workdir, name="worker")
    worker.start()
    try:
        worker.wait_ready(120)
        assert asyncio.run(replay(settings, records(RECORDS), rate=0)) == RECORDS
        scores = scores_through(settings, RECORDS)
        assert len(scores) == RECORDS, worker.tail(20)
        assert {s["source"] for s in scores} == {"pump-0", "pump-1", "pump-2"}
        assert all(0.0 <= float(s["score"]) <= 1.0 for s in scores)  # type: ignore[arg-type]
    finally:
        assert worker.stop(timeout=20) is not None
    assert PASSWORD not in worker.log_path.read_text()


def test_the_worker_scores_through_mutual_tls(
    secured: KafkaBroker, certs: Certs, tmp_path: Path
) -> None:
    worker_scores_through(env_for(tmp_path, "mtls", mtls(secured, certs)), tmp_path / "mtls")


def test_the_worker_scores_through_sasl_ssl_scram_sha_512(
    secured: KafkaBroker, certs: Certs, tmp_path: Path
) -> None:
    password = tmp_path / "password"
    password.write_text(PASSWORD + "\n")  # as a mounted secret or `echo` leaves it
    security = scram(secured, certs, password, "SCRAM-SHA-512")
    worker_scores_through(env_for(tmp_path, "scram", security), tmp_path / "scram")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_replay_and_tail_log_in_with_the_other_mechanisms(
    secured: KafkaBroker, certs: Certs, tmp_path: Path, mechanism: str
) -> None:
    password = tmp_path / "password"
    password.write_text(PASSWORD)
    env = env_for(tmp_path, "other", scram(secured, certs, password, mechanism))
    settings = load_settings(
        environ={**env, "ANOMSTREAM_TOPIC_SCORES": env["ANOMSTREAM_TOPIC_SIGNALS"]}
    )
    assert asyncio.run(replay(settings, records(5), rate=0)) == 5
    assert len(scores_through(settings, 5)) == 5  # the signals topic, read back by tail


def run_command(env: dict[str, str], *args: str, timeout: float = 60) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "anomstream", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stderr, time.monotonic() - started


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("anomstream: error: "), stderr
    return lines[0]


def test_a_wrong_password_stops_the_worker_at_once_in_one_line(
    secured: KafkaBroker, certs: Certs, tmp_path: Path
) -> None:
    password = tmp_path / "password"
    password.write_text("not-" + PASSWORD)
    env = env_for(tmp_path, "wrong", scram(secured, certs, password, "SCRAM-SHA-512"))
    code, stderr, took = run_command({**os.environ, **env}, "worker")  # startup_wait is 60 s
    line = one_line(stderr)
    assert code == 1 and took < 30, (code, took)
    assert "refused the SASL login of user 'alice'" in line and "security_sasl_password" in line
    assert PASSWORD not in stderr


def test_tail_with_an_untrusted_ca_is_one_line(
    secured: KafkaBroker, certs: Certs, tmp_path: Path
) -> None:
    other = make_certs(tmp_path / "other")
    env = env_for(tmp_path, "ca", {**mtls(secured, certs), "SECURITY_SSL_CAFILE": str(other.ca)})
    code, stderr, took = run_command(
        {**os.environ, **env}, "tail", "--from-beginning", "-n", "1", "--idle-timeout", "5"
    )
    line = one_line(stderr)
    assert code == 1 and took < 30
    assert "does not verify" in line and "security_ssl_cafile" in line
