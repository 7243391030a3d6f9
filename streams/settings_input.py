"""The input settings group (`settings.input`): which format the signals topic carries and how
its metrics map to records; `options()` is the formats' `InfluxOptions`.

Its own module because `streams/settings.py` is at its size limit; it nests there as the others.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from streams.formats.influx import InfluxOptions, Precision, Strings


def split_list(value: object) -> object:
    """Env and flags give `a,b,c`; the file gives a list (every settings group's list fields)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class InputSettings(BaseModel):
    """The input format (docs/messages.md, "Input formats")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_format: Literal["json", "influx", "telegraf-json"] = Field(
        "json", description="what the signals topic carries: json, influx or telegraf-json"
    )
    influx_source_tags: list[str] = Field(
        default_factory=lambda: list(InfluxOptions().source_tags),
        description="tags whose values follow the measurement in the source id",
    )
    influx_precision: Precision = Field(
        InfluxOptions().precision, description="unit of line protocol timestamps"
    )
    influx_strings: Strings = Field(
        InfluxOptions().strings, description="string fields: ignore, or dead_letter the record"
    )
    telegraf_timestamp_units: Precision = Field(
        InfluxOptions().json_precision, description="unit of Telegraf JSON's timestamp"
    )

    _tags = field_validator("influx_source_tags", mode="before")(split_list)

    def options(self) -> InfluxOptions:
        return InfluxOptions(
            source_tags=tuple(self.influx_source_tags),
            precision=self.influx_precision,
            strings=self.influx_strings,
            json_precision=self.telegraf_timestamp_units,
        )
