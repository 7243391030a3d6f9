"""One frozen settings object for the whole runtime, built from env (`ANOMSTREAM_*`) and a file.

Nothing below `anomstream.cli` reads `os.environ`: the settings are built once and passed down.
The config file (TOML, `--config` or `ANOMSTREAM_CONFIG`) uses the same names, lower-case,
without the prefix; the environment wins over the file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "ANOMSTREAM_"


class SettingsError(ValueError):
    """A setting or the config file cannot be used; the message is one line for the user."""


class Settings(BaseSettings):
    """Every knob a user can turn. Field names are the env names without the prefix."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    # Kafka
    broker: str = Field("kafka://localhost:9092", description="bootstrap servers")
    app_id: str = Field("anomstream", description="Faust app id = consumer group")
    topic_signals: str = "signals"
    topic_scores: str = "scores"
    topic_anomalies: str = "anomalies"
    topic_dlq: str = "signals.dlq"
    partitions: int = Field(4, ge=1, le=1024, description="partitions of the topics it creates")
    replication_factor: int = Field(1, ge=1, le=16)
    producer_idempotence: bool = Field(True, description="false for the embedded broker")
    producer_linger_ms: int = Field(
        0,
        ge=0,
        le=1000,
        description="0: a micro-batch's outputs already leave as one batch per partition, and "
        "waiting for more only added latency (measured: p50 at half rate 80 -> 60 ms)",
    )

    # Serving
    startup_wait: float = Field(
        60.0, ge=0.0, description="seconds to wait for the broker at start before giving up"
    )
    metrics_port: int = Field(9464, ge=0, le=65535, description="0 disables the endpoint")
    metrics_sources: list[str] = Field(
        default_factory=list, description="sources that get per-source metric series"
    )
    target_fap: float = Field(1e-3, gt=0.0, lt=0.5, description="false alarms per record")
    warmup: int = Field(200, ge=1, description="values per signal before a detector may alarm")
    learn_gate: bool = Field(False, description="anomalous records do not update detectors")
    realert_after: int = Field(
        100, ge=0, description="records before a source alerts again without escalating"
    )
    known_factor: float = Field(
        10.0,
        ge=1.0,
        description="times more evidence an alert asks of a record whose values are all known",
    )
    timezone: str = Field(
        "UTC", description="IANA time zone of the daily and weekly rhythms (DST-aware)"
    )
    seasonal_periods: list[str] = Field(
        default_factory=lambda: ["day", "week", "samples"],
        description="period candidates: day, week, samples (a rhythm in samples); empty = off",
    )
    seasonal_bins: int = Field(48, ge=4, le=512, description="profile bins per period")
    seasonal_signals: list[str] = Field(
        default_factory=lambda: ["*"],
        description="signal name patterns that get a seasonal baseline; !pattern excludes",
    )
    models_dir: Path = Field(Path("models"), description="model directories (train --out here)")
    models_refresh: float = Field(
        5.0, gt=0.0, le=3600.0, description="seconds between looks for new or changed models"
    )
    data_dir: Path = Path(".anomstream")

    # Micro-batching and limits
    batch_size: int = Field(2000, ge=1, le=100_000, description="max events per micro-batch")
    batch_within: float = Field(0.01, gt=0.0, le=10.0, description="max seconds a batch waits")
    source_ttl: float = Field(
        7 * 86400.0, ge=0.0, description="forget a source after this many seconds without records"
    )
    state_flush_interval: float = Field(
        0.5, gt=0.0, le=60.0, description="seconds between state saves (and input commits)"
    )
    max_message_bytes: int = Field(1_048_576, ge=1024, description="larger messages are DLQ'd")
    max_signals: int = Field(1000, ge=1, description="signals per record")
    max_name_length: int = Field(200, ge=1, description="source and signal name length")

    # Consumer-group timing (lowered in tests; defaults suit production)
    broker_session_timeout: float = Field(30.0, gt=0)
    broker_heartbeat_interval: float = Field(3.0, gt=0)
    broker_rebalance_timeout: float = Field(60.0, gt=0)
    broker_commit_interval: float = Field(1.0, gt=0)
    log_level: str = "info"

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        return normalise_broker(value)

    @field_validator("metrics_sources", "seasonal_periods", "seasonal_signals", mode="before")
    @classmethod
    def _source_list(cls, value: object) -> object:
        """Env and flags give `a,b,c`; the file gives a list."""
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (IANA names, e.g. Europe/Berlin)"
            ) from None
        return value

    @field_validator("seasonal_periods")
    @classmethod
    def _periods(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - {"day", "week", "samples"})
        if unknown:
            raise ValueError(f"unknown period(s) {', '.join(unknown)}: use day, week, samples")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.lower()
        if level == "warning":
            level = "warn"
        if level not in {"crit", "error", "warn", "info", "debug"}:
            raise ValueError("must be one of crit, error, warn, info, debug")
        return level

    @property
    def bootstrap_servers(self) -> str:
        """`host:port[,host:port]` for aiokafka clients."""
        return self.broker.removeprefix("kafka://").replace(";", ",")

    @property
    def threshold(self) -> float:
        """Score at or above which a record is an anomaly: 1 - target false-alarm probability."""
        return 1.0 - self.target_fap


def normalise_broker(value: str) -> str:
    """Accept `host:port`, `kafka://host:port` or a comma list; return Faust's URL form."""
    value = value.strip()
    if not value:
        raise ValueError("broker must not be empty")
    hosts = value.removeprefix("kafka://").split(",")
    for host in hosts:
        name, sep, port = host.rpartition(":")
        if not sep or not name or not port.isdigit():
            raise ValueError(f"expected host:port, got {host!r}")
    return "kafka://" + ",".join(hosts)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"config file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    section = data.get("anomstream", data)
    if not isinstance(section, dict):
        raise SettingsError(f"config file {path}: [anomstream] must be a table")
    return section


def load_settings(
    config: Path | None = None, environ: dict[str, str] | None = None, **overrides: Any
) -> Settings:
    """Build the settings: explicit overrides > environment > config file > defaults."""
    env = os.environ if environ is None else environ
    if config is None and env.get(ENV_PREFIX + "CONFIG"):
        config = Path(env[ENV_PREFIX + "CONFIG"])
    from_file = _read_file(config) if config is not None else {}
    names = set(Settings.model_fields)
    unknown = sorted(set(from_file) - names)
    if unknown:
        raise SettingsError(f"config file {config}: unknown setting(s) {', '.join(unknown)}")
    from_env = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in env.items()
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :].lower() in names
    }
    values = {**from_file, **from_env, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        # Values are passed explicitly so that `environ` (tests) and the file are honoured alike.
        return Settings.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise SettingsError(f"invalid setting {where}: {first['msg']}") from None
