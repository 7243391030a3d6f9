"""The serving settings group (`settings.serving`): models, metrics and logs of a running worker.

Its own module because `streams/settings.py` is at its size limit; it nests there as the others.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from streams.settings_input import split_list


class ServingSettings(BaseModel):
    """Models, metrics and logs of a running worker."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models_dir: Path = Field(Path("models"), description="model directories (train --out here)")
    models_refresh: float = Field(
        5.0, gt=0.0, le=3600.0, description="seconds between looks for new or changed models"
    )
    metrics_port: int = Field(9464, ge=0, le=65535, description="0 disables the endpoint")
    metrics_sources: list[str] = Field(
        default_factory=list, description="sources that get per-source metric series"
    )
    log_level: str = "info"
    rules_file: Path | None = Field(None, description="validation rules (docs/rules.md)")

    _lists = field_validator("metrics_sources", mode="before")(split_list)

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.lower()
        if level == "warning":
            level = "warn"
        if level not in {"crit", "error", "warn", "info", "debug"}:
            raise ValueError("must be one of crit, error, warn, info, debug")
        return level
