"""The API's settings: one frozen object from `ANOMSTREAM_API_*` and the `serve` flags.

A prefix of its own so that the API's limits never collide with the worker's settings, and the
limits are settings, not constants: an operator sizes them to the machine (docs/api.md).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from detectors.config import TARGET_FAP

ENV_PREFIX = "ANOMSTREAM_API_"
MIB = 1024 * 1024


class ApiSettingsError(ValueError):
    """A setting cannot be used; the message is one line for the user."""


class ApiSettings(BaseSettings):
    """Every knob of the API server (env `ANOMSTREAM_API_<NAME>`, flags of `anomstream serve`)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="port to listen on (0: any free port)")
    data_dir: Path = Field(Path(".anomstream/api"), description="job database and results")
    models_dir: Path = Field(Path("models"), description="model directories (train --out here)")
    tokens_file: Path | None = Field(None, description="bearer tokens, one a line; unset = open")
    rules_file: Path | None = Field(
        None, description="validation rules judged on every call and job (docs/rules.md)"
    )
    insecure: bool = Field(False, description="allow a non-loopback host without tokens")
    target_fap: float = Field(
        TARGET_FAP, gt=0.0, lt=0.5, description="false alarms per record without a model's own"
    )
    max_body_bytes: int = Field(10 * MIB, ge=1024, description="request body (not uploads)")
    max_upload_bytes: int = Field(200 * MIB, ge=1024, description="a job's or training's upload")
    max_rows: int = Field(10_000, ge=1, description="records per POST /v1/detect")
    max_signals: int = Field(100, ge=1, le=1000, description="signals per record")
    max_jobs: int = Field(16, ge=1, description="jobs queued or running at once")
    workers: int = Field(1, ge=1, le=64, description="job processes running at once")
    retention_hours: float = Field(
        168.0, gt=0.0, description="a finished job's results are kept this long"
    )
    train_timeout: float = Field(3600.0, gt=0.0, description="seconds a training job may run")

    @property
    def database(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    @property
    def retention_seconds(self) -> float:
        return self.retention_hours * 3600.0


def load_api_settings(**overrides: Any) -> ApiSettings:
    """Flags (`overrides`, None = not given) over env over defaults; one line when unusable."""
    given = {k: v for k, v in overrides.items() if v is not None}
    strays = stray_variables(os.environ)
    if strays:
        raise ApiSettingsError(strays[0])
    try:
        return ApiSettings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "settings"
        where = name if name in given else f"{ENV_PREFIX}{name.upper()}"
        raise ApiSettingsError(f"{where}: {first['msg']}") from None


def stray_variables(environ: Mapping[str, str]) -> list[str]:
    """One line per `ANOMSTREAM_API_*` variable that is no setting."""
    known = {ENV_PREFIX + name.upper() for name in ApiSettings.model_fields}
    return [stray_line(k) for k in sorted(environ) if k.startswith(ENV_PREFIX) and k not in known]


def stray_line(key: str) -> str:
    """`key` is no API setting, with the closest one (a typo is otherwise ignored)."""
    known = [ENV_PREFIX + name.upper() for name in ApiSettings.model_fields]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
    return f"{key} is not a setting" + (f" (did you mean {close[0]}?)" if close else "")


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only (`localhost`, 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def sensitivity_fap(sensitivity: float) -> float:
    """target_fap = 10 ** (8 s - 9): s = 0 pages almost never (1e-9 per record), s = 1 pages
    one record in ten; log-linear, so each 0.125 of sensitivity is ten times more alarms, and
    the default target_fap (1e-3) is s = 0.75."""
    if not 0.0 <= sensitivity <= 1.0:
        raise ValueError(f"sensitivity must be in 0..1, not {sensitivity}")
    return float(10.0 ** (8.0 * sensitivity - 9.0))
