"""One frozen settings object for the whole runtime, built from env (`ANOMSTREAM_*`) and a file.

Grouped by concern (`settings.kafka`, `.scoring`, `.seasonal`, `.limits`, `.state`, `.serving`),
each group's names flat and unique, so the environment keeps one variable per setting
(`ANOMSTREAM_TOPIC_SCORES` is `settings.kafka.topic_scores`). Defaults that the library also
needs (scoring, seasonal, limits) are read from the library's own config classes, and each group
builds that class (`settings.scoring.config()`): one place per default, nothing copied by hand.

Nothing below `anomstream.cli` reads `os.environ`: the settings are built once and passed down.
The config file (TOML, `--config` or `ANOMSTREAM_CONFIG`) uses the same names, lower-case,
without the prefix, flat or in a table per group (`[anomstream.kafka]`); the environment wins
over the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from detectors.clock import LocalClock
from detectors.engine import ScoringConfig
from detectors.messages import ScoreMode
from detectors.registry import SuiteOptions
from detectors.source_state import MAX_SOURCE_SIGNALS
from streams.codec import Limits
from streams.settings_input import InputSettings, split_list
from streams.settings_security import SecuritySettings
from streams.settings_serving import ServingSettings

ENV_PREFIX = "ANOMSTREAM_"
NOT_SETTINGS = frozenset({"CONFIG", "CACHE", "TEST_BROKER", "REQUIRE_KAFKA", "BENCH_DATA"})
OTHER_PREFIXES = ("API_",)  # anomstream.api.settings checks its own ANOMSTREAM_API_* names
"""`ANOMSTREAM_*` variables that are not settings: the config file's path, and the harness's."""
PERIODS = ("day", "week", "samples")
MAX_SOURCES = 100_000
"""Sources one worker holds (`max_sources`): ~120 KiB each at 8 signals (docs/operations.md)."""


class SettingsError(ValueError):
    """A setting or the config file cannot be used; the message is one line for the user."""


def default(config: type[Any], name: str) -> Any:
    """The default of field `name` of the library's dataclass `config`."""
    found = {f.name: f for f in dataclasses.fields(config)}[name]
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    return found.default


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Group):
    """The cluster, the topics, the consumer's micro-batches and group timing."""

    broker: str = Field("kafka://localhost:9092", description="bootstrap servers")
    app_id: str = Field("anomstream", description="Faust app id = consumer group")
    topic_signals: str = "signals"
    topic_scores: str = "scores"
    topic_anomalies: str = "anomalies"
    topic_dlq: str = "signals.dlq"
    topic_episodes: str = Field("episodes", description="episode topic (empty: no episodes)")
    partitions: int = Field(4, ge=1, le=1024, description="partitions of the topics it creates")
    replication_factor: int = Field(1, ge=1, le=16)
    producer_idempotence: bool = Field(True, description="false for the embedded broker")
    producer_linger_ms: int = Field(
        0,
        ge=0,
        le=1000,
        description="0: a micro-batch's outputs already leave as one batch per partition "
        "(docs/benchmarks.md)",
    )
    startup_wait: float = Field(
        60.0, ge=0.0, description="seconds to wait for the broker at start before giving up"
    )
    batch_size: int = Field(2000, ge=1, le=100_000, description="max events per micro-batch")
    max_batch_records: int = Field(
        5_000,
        ge=1,
        le=1_000_000,
        description="max records scored at a time: a micro-batch of more (array messages) "
        "is scored in chunks, the event loop running between them",
    )
    batch_within: float = Field(0.01, gt=0.0, le=10.0, description="max seconds a batch waits")
    # Consumer-group timing (lowered in tests; defaults suit production)
    broker_session_timeout: float = Field(30.0, gt=0)
    broker_heartbeat_interval: float = Field(3.0, gt=0)
    broker_rebalance_timeout: float = Field(60.0, gt=0)
    broker_commit_interval: float = Field(1.0, gt=0)
    group_instance_id: str = Field(
        "auto",
        max_length=249,
        description="static group membership: a restarted worker with the same id takes its "
        "partitions back at once; auto = host name + app id + data dir; empty disables",
    )

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        return normalise_broker(value)

    @property
    def bootstrap_servers(self) -> str:
        """`host:port[,host:port]` for aiokafka clients."""
        return self.broker.removeprefix("kafka://").replace(";", ",")


class ScoringSettings(_Group):
    """Thresholds and alert policy: `config()` is the library's `ScoringConfig`."""

    target_fap: float = Field(
        default(ScoringConfig, "target_fap"), gt=0.0, lt=0.5, description="false alarms per record"
    )
    warmup: int = Field(
        default(ScoringConfig, "warmup"),
        ge=1,
        description="values per signal before a detector may alarm",
    )
    learn_gate: bool = Field(
        default(ScoringConfig, "learn_gate"),
        description="anomalous records do not update detectors",
    )
    realert_after: int = Field(
        default(ScoringConfig, "realert_after"),
        ge=0,
        description="records before a source alerts again without escalating",
    )
    known_factor: float = Field(
        default(ScoringConfig, "known_factor"),
        ge=1.0,
        description="times more evidence an alert asks of a record whose values are all known",
    )
    scores: ScoreMode = Field("full", description="score messages: full, compact, anomalous, off")
    episode_gap: int = Field(
        default(ScoringConfig, "episode_gap"), ge=0, description="normal records an episode spans"
    )

    def config(self) -> ScoringConfig:
        return ScoringConfig(**self.model_dump(exclude={"scores"}))

    @property
    def threshold(self) -> float:
        """Score at or above which a record is an anomaly: 1 - target false-alarm probability."""
        return self.config().threshold


class SeasonalSettings(_Group):
    """The daily, weekly and sample rhythms: `options()` is the library's `SuiteOptions`."""

    timezone: str = Field(
        LocalClock().zone, description="IANA time zone of the daily and weekly rhythms (DST-aware)"
    )
    seasonal_periods: list[str] = Field(
        default_factory=lambda: list(default(SuiteOptions, "periods")),
        description="period candidates: day, week, samples (a rhythm in samples); empty = off",
    )
    seasonal_bins: int = Field(
        default(SuiteOptions, "bins"), ge=4, le=512, description="profile bins per period"
    )
    seasonal_signals: list[str] = Field(
        default_factory=lambda: list(default(SuiteOptions, "signals")),
        description="signal name patterns that get a seasonal baseline; !pattern excludes",
    )

    _lists = field_validator("seasonal_periods", "seasonal_signals", mode="before")(split_list)

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
        unknown = sorted(set(value) - set(PERIODS))
        if unknown:
            raise ValueError(f"unknown period(s) {', '.join(unknown)}: use {', '.join(PERIODS)}")
        return value

    def options(self) -> SuiteOptions:
        return SuiteOptions(
            clock=LocalClock(self.timezone),
            periods=tuple(self.seasonal_periods),
            bins=self.seasonal_bins,
            signals=tuple(self.seasonal_signals),
        )


class LimitsSettings(_Group):
    """Size limits that protect the worker: `limits()` is the codec's `Limits`."""

    max_message_bytes: int = Field(
        default(Limits, "max_message_bytes"), ge=1024, description="larger messages are DLQ'd"
    )
    max_signals: int = Field(default(Limits, "max_signals"), ge=1, description="signals per record")
    max_name_length: int = Field(
        default(Limits, "max_name_length"), ge=1, description="source and signal name length"
    )

    max_future: float = Field(
        default(Limits, "max_future"),
        ge=0.0,
        description="seconds a record's ts may run ahead of the worker's clock (0 = no bound)",
    )

    def limits(self) -> Limits:
        return Limits(**self.model_dump())


class StateSettings(_Group):
    """Where the state lives, how often it is saved, when it is forgotten, how much is held."""

    data_dir: Path = Path(".anomstream")
    state_flush_interval: float = Field(
        0.5, gt=0.0, le=60.0, description="seconds between checkpoints (saves due, input acks)"
    )
    state_save_interval: float = Field(
        5.0, ge=0.0, le=3600.0, description="seconds a record may wait unsaved (0: none)"
    )
    state_save_records: int = Field(1_000, ge=0, description="... or has this many (0 = no bound)")
    source_ttl: float = Field(
        7 * 86400.0, ge=0.0, description="forget a source after this many seconds without records"
    )
    max_source_signals: int = Field(
        MAX_SOURCE_SIGNALS,
        ge=1,
        description="signal names per source (its state must fit one changelog message); a "
        "record that would add more is dead-lettered (too_many_signals)",
    )
    max_sources: int = Field(
        MAX_SOURCES,
        ge=1,
        description="sources one worker holds (memory); a record of a new source beyond it is "
        "dead-lettered (too_many_sources)",
    )


class Settings(BaseSettings):
    """Every knob a user can turn, by concern; `names()` are the env names without the prefix."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    kafka: KafkaSettings = KafkaSettings()
    scoring: ScoringSettings = ScoringSettings()
    seasonal: SeasonalSettings = SeasonalSettings()
    limits: LimitsSettings = LimitsSettings()
    input: InputSettings = InputSettings()
    state: StateSettings = StateSettings()
    serving: ServingSettings = ServingSettings()
    security: SecuritySettings = SecuritySettings()

    @staticmethod
    def names() -> dict[str, str]:
        """Every setting's flat name -> the group it belongs to."""
        return dict(GROUP_OF)


GROUPS: dict[str, type[_Group]] = {
    name: field.annotation  # type: ignore[misc]
    for name, field in Settings.model_fields.items()
}
GROUP_OF: dict[str, str] = {
    name: group for group, model in GROUPS.items() for name in model.model_fields
}
assert len(GROUP_OF) == sum(len(m.model_fields) for m in GROUPS.values()), "names must be unique"


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


def _nest(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nested: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}
    for name, value in flat.items():
        nested[GROUP_OF[name]][name] = value
    return nested


def _flatten(section: dict[str, Any], where: str) -> dict[str, Any]:
    """The file's settings, flat: top-level names and `[anomstream.<group>]` tables alike."""
    flat: dict[str, Any] = {}
    for key, value in section.items():
        if key in GROUPS and isinstance(value, dict):
            for name, inner in value.items():
                if GROUP_OF.get(name) != key:
                    raise SettingsError(f"{where}: unknown setting {key}.{name}")
                flat[name] = inner
        else:
            flat[key] = value
    unknown = sorted(set(flat) - set(GROUP_OF))
    if unknown:
        raise SettingsError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    return flat


def stray_variables(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """One line per `ANOMSTREAM_*` variable that is no setting (a typo is otherwise ignored)."""
    known = [ENV_PREFIX + name.upper() for name in GROUP_OF]
    lines = []
    for key in sorted(environ):
        name = key[len(ENV_PREFIX) :]
        if not key.startswith(ENV_PREFIX) or key in known or name in NOT_SETTINGS:
            continue
        if name.startswith(OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.85)
        hint = f" (did you mean {close[0]}?)" if close else ""
        lines.append(f"{key} is not a setting{hint}")
    return lines


def load_settings(
    config: Path | None = None, environ: dict[str, str] | None = None, **overrides: Any
) -> Settings:
    """Build the settings: explicit overrides > environment > config file > defaults.

    `overrides` and the file use the flat names (`topic_scores=...`)."""
    env = os.environ if environ is None else environ
    if config is None and env.get(ENV_PREFIX + "CONFIG"):
        config = Path(env[ENV_PREFIX + "CONFIG"])
    from_file = _flatten(_read_file(config), f"config file {config}") if config is not None else {}
    from_env = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in env.items()
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :].lower() in GROUP_OF
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(GROUP_OF))
    if unknown:
        raise TypeError(f"unknown setting(s) {', '.join(unknown)}")
    values = _nest({**from_file, **from_env, **given})
    try:
        # Values are passed explicitly so that `environ` (tests) and the file are honoured alike.
        return Settings.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        named = [str(p) for p in first["loc"] if str(p) in GROUP_OF]
        where = named[0] if named else ".".join(str(p) for p in first["loc"]) or "settings"
        why = first["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's
        raise SettingsError(f"invalid setting {where}: {why}") from None
