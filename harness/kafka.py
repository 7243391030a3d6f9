"""Single-node Apache Kafka in KRaft mode, run from the cached jars: what users run in production.

Recovery, rebalance, reliability and throughput are proven on this broker, so it runs with
Kafka's own GC settings, keeps its log dir and ports across a restart, and formats that log dir
only once (a second format would wipe the data a recovery test restarts on).

Optionally, beside the PLAINTEXT listener (the default, unchanged, and the one readiness is
probed on), an SSL listener that requires a client certificate (`certs`) and a SASL_SSL one
(`certs` and `users`) taking SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN logins; the SCRAM users are
written into the log dir when it is formatted (`--add-scram`), as KRaft wants them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.certs import Certs
from harness.errors import BrokerError
from harness.kafka_dist import KAFKA_VERSION, fetch_kafka, java_problem
from harness.local import LocalBroker
from harness.probe import free_port

__all__ = ["KAFKA_JVM_OPTS", "SASL_MECHANISMS", "KafkaBroker"]

SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
SASL_MECHANISMS = (*SCRAM_MECHANISMS, "PLAIN")
"""What the SASL_SSL listener takes; every user may log in with each."""

#: Kafka's own GC choice (throughput benchmarks run on this broker, so no C1-only JIT tricks:
#: `-XX:TieredStopAtLevel=1` starts faster and costs peak speed); heap is separate.
KAFKA_JVM_OPTS: tuple[str, ...] = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Xshare:auto",
    "-Djava.awt.headless=true",
)


class KafkaBroker(LocalBroker):
    """Single-node Apache Kafka in KRaft mode (broker and controller in one JVM).

    The log dir lives under `workdir`; `start()` after `stop()` reuses it and the same ports, so
    data survives a restart (that is what recovery tests need).
    """

    kind = "kafka"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        controller_port: int | None = None,
        version: str = KAFKA_VERSION,
        libs: Path | None = None,
        properties: Mapping[str, str | int] | None = None,
        heap: str = "512m",
        jvm_opts: Sequence[str] = KAFKA_JVM_OPTS,
        certs: Certs | None = None,
        users: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(workdir, port)
        if users and certs is None:
            raise ValueError("SASL users need certs: the SASL listener is SASL_SSL")
        self.certs = certs
        self.users = dict(users or {})
        self.ssl_port = free_port() if certs is not None else None
        self.sasl_port = free_port() if users else None
        self.version = version
        self.controller_port = controller_port if controller_port is not None else free_port()
        self.libs = libs
        self.heap = heap
        self.jvm_opts = tuple(jvm_opts)
        self.extra_properties = dict(properties or {})
        self.data_dir = self.workdir / "kraft-logs"
        self.config_path = self.workdir / "server.properties"
        self.cluster_id = self._read_cluster_id()

    def _read_cluster_id(self) -> str:
        """Keep the cluster id of an existing log dir, so a new object can restart old data."""
        meta = self.data_dir / "meta.properties"
        if meta.is_file():
            for line in meta.read_text().splitlines():
                if line.startswith("cluster.id="):
                    return line.split("=", 1)[1].strip()
        return _kafka_cluster_id()

    @property
    def ssl_bootstrap(self) -> str:
        """`host:port` of the SSL listener (client certificate required)."""
        if self.ssl_port is None:
            raise BrokerError("this broker has no SSL listener (give it certs)")
        return f"127.0.0.1:{self.ssl_port}"

    @property
    def sasl_bootstrap(self) -> str:
        """`host:port` of the SASL_SSL listener."""
        if self.sasl_port is None:
            raise BrokerError("this broker has no SASL_SSL listener (give it certs and users)")
        return f"127.0.0.1:{self.sasl_port}"

    def _listeners(self) -> dict[str, int]:
        """Listener name (= its security protocol) -> port, CONTROLLER aside."""
        found = {"PLAINTEXT": self.port}
        if self.ssl_port is not None:
            found["SSL"] = self.ssl_port
        if self.sasl_port is not None:
            found["SASL_SSL"] = self.sasl_port
        return found

    def _security_properties(self) -> dict[str, str | int]:
        if self.certs is None:
            return {}
        props: dict[str, str | int] = {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.certs.broker_keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.certs.ca),
            "listener.name.ssl.ssl.client.auth": "required",
        }
        if self.users:
            scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            plain = "".join(f' user_{name}="{pw}"' for name, pw in self.users.items())
            props.update(
                {
                    "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
                    "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
                    "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
                    "listener.name.sasl_ssl.plain.sasl.jaas.config": (
                        f"org.apache.kafka.common.security.plain.PlainLoginModule required{plain};"
                    ),
                }
            )
        return props

    def properties(self) -> dict[str, str]:
        """The server.properties this broker runs with (extra `properties` win)."""
        listeners = self._listeners()
        advertised = ",".join(f"{name}://127.0.0.1:{port}" for name, port in listeners.items())
        props: dict[str, str | int] = {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"{advertised},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": advertised,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(
                f"{name}:{name}" for name in [*listeners, "CONTROLLER"]
            ).replace("CONTROLLER:CONTROLLER", "CONTROLLER:PLAINTEXT"),
            "log.dirs": str(self.data_dir),
            "num.partitions": 1,
            "default.replication.factor": 1,
            "min.insync.replicas": 1,
            "offsets.topic.replication.factor": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            **self._security_properties(),
        }
        props.update(self.extra_properties)
        return {key: str(value) for key, value in props.items()}

    def _java(self, main_class: str, *args: str) -> list[str]:
        assert self.libs is not None
        return [
            "java",
            f"-Xmx{self.heap}",
            f"-Xms{min(256, _megabytes(self.heap))}m",
            *self.jvm_opts,
            f"-Dlog4j2.configurationFile={self._log4j_config()}",
            f"-Dkafka.logs.dir={self.workdir}",
            "-cp",
            str(self.libs / "*"),
            main_class,
            *args,
        ]

    def _log4j_config(self) -> Path:
        """Broker logs to stdout (hence our log file) at INFO, without the noisy request logs."""
        path = self.workdir / "log4j2.properties"
        path.write_text(_LOG4J2)
        return path

    def _prepare(self) -> None:
        problem = java_problem(shutil.which("java"))
        if problem is not None:
            raise BrokerError(problem)
        if self.libs is None:
            self.libs = fetch_kafka(self.version)
        self.config_path.write_text(
            "".join(f"{key}={value}\n" for key, value in self.properties().items())
        )
        if not (self.data_dir / "meta.properties").is_file():
            self._format()

    def _format(self) -> None:
        """Format the KRaft log dir once; a restart must not (it would wipe the data)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = self._java(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            self.cluster_id,
            "-c",
            str(self.config_path),
            "--ignore-formatted",
            *(
                arg
                for name, password in self.users.items()
                for mechanism in SCRAM_MECHANISMS
                for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
            ),
        )
        with self.log_path.open("ab") as log:
            log.write(f"\n=== format: {' '.join(cmd)}\n".encode())
            log.flush()
            code = subprocess.run(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                timeout=120,
                check=False,
            ).returncode
        if code != 0:
            tail = " | ".join(line for line in self.log_tail(3) if line.strip())
            raise BrokerError(f"kafka StorageTool format failed (exit {code}): {tail}")

    def _command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.config_path))


def _megabytes(size: str) -> int:
    """JVM size string ('512m', '1g') in MiB."""
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", size.strip())
    if not match:
        raise ValueError(f"bad JVM heap size {size!r}")
    value, unit = int(match.group(1)), match.group(2).lower()
    return {"k": value // 1024, "m": value, "g": value * 1024, "": value // (1024 * 1024)}[unit]


def _kafka_cluster_id() -> str:
    """A random KRaft cluster id: 16 random bytes, URL-safe base64 without padding, never
    starting with `-` (the storage tool would take it for an option: seen once in 64 runs)."""
    import base64

    while True:
        found = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not found.startswith("-"):
            return found


_LOG4J2 = """\
# Generated by harness.kafka: broker logs go to stdout, which is the broker's log file.
name = anomstream-kafka
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.network.name = kafka.network.RequestChannel$
logger.network.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
"""
