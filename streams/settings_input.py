"""The input settings group (`settings.input`): which format the signals topic carries and how
its metrics map to records; `options()` is the formats' `InfluxOptions`.

Its own module because `streams/settings.py` is at its size limit; it nests there as the others.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from streams.formats import Decoder, decoder_for
from streams.formats.avro import AvroDecoder, AvroOptions
from streams.formats.influx import InfluxOptions, Precision, Strings
from streams.formats.registry import SchemaFetcher, SchemaRegistry
from streams.settings_security import read_secret


def split_list(value: object) -> object:
    """Env and flags give `a,b,c`; the file gives a list (every settings group's list fields)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class InputSettings(BaseModel):
    """The input format (docs/messages.md, "Input formats")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_format: Literal["json", "influx", "telegraf-json", "avro"] = Field(
        "json", description="what the signals topic carries: json, influx, telegraf-json or avro"
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

    avro_source_fields: list[str] = Field(
        default_factory=lambda: list(AvroOptions().source_fields),
        description="Avro fields whose values, joined by /, make the source id",
    )
    avro_ts_field: str = Field(AvroOptions().ts_field, description="Avro field of the time")
    avro_ts_units: Precision = Field(
        AvroOptions().ts_units, description="unit of a numeric Avro time without a logical type"
    )
    avro_signals_field: str = Field(
        AvroOptions().signals_field,
        description="Avro map or record of the signals; without it, every other numeric field",
    )
    registry_url: str | None = Field(
        None, description="schema registry (Confluent API) for avro, e.g. http://registry:8081"
    )
    registry_username: str | None = Field(None, description="basic auth (an API key)")
    registry_password: SecretStr | None = Field(None, description="its secret")
    registry_password_file: Path | None = None
    registry_ca_file: Path | None = Field(None, description="CA bundle of an https registry")
    registry_timeout: float = Field(
        10.0, gt=0.0, le=300.0, description="seconds one registry request may take"
    )

    _tags = field_validator("influx_source_tags", "avro_source_fields", mode="before")(split_list)

    @model_validator(mode="before")
    @classmethod
    def _secret_file(cls, data: Any) -> Any:
        """`registry_password_file`: the secret from a mounted file (as the security group's)."""
        if not isinstance(data, dict) or not data.get("registry_password_file"):
            return data
        if data.get("registry_password"):
            raise ValueError("give registry_password or registry_password_file, not both")
        path = data["registry_password_file"]
        return {**data, "registry_password": read_secret("registry_password", path)}

    @model_validator(mode="after")
    def _registry_for_avro(self) -> InputSettings:
        if self.input_format == "avro" and not self.registry_url:
            raise ValueError("input_format avro needs registry_url (the schema registry)")
        if not self.avro_source_fields:
            raise ValueError("avro_source_fields needs at least one field")
        return self

    def avro(self) -> AvroOptions:
        return AvroOptions(
            source_fields=tuple(self.avro_source_fields),
            ts_field=self.avro_ts_field,
            ts_units=self.avro_ts_units,
            signals_field=self.avro_signals_field,
        )

    def registry(self) -> SchemaRegistry:
        """The registry client; `ValueError` when no `registry_url` is set."""
        if not self.registry_url:
            raise ValueError("no schema registry: set ANOMSTREAM_REGISTRY_URL")
        password = self.registry_password
        return SchemaRegistry(
            self.registry_url,
            self.registry_username,
            password.get_secret_value() if password is not None else None,
            self.registry_ca_file,
            self.registry_timeout,
        )

    def options(self) -> InfluxOptions:
        return InfluxOptions(
            source_tags=tuple(self.influx_source_tags),
            precision=self.influx_precision,
            strings=self.influx_strings,
            json_precision=self.telegraf_timestamp_units,
        )

    def decoding(
        self, counted: Callable[[str], None] = lambda outcome: None
    ) -> tuple[Decoder, SchemaFetcher | None]:
        """The worker's decoder, and for `avro` what fetches its schemas before each batch."""
        decoder = decoder_for(self.input_format, self.options(), self.avro())
        if isinstance(decoder, AvroDecoder):
            return decoder, SchemaFetcher(self.registry(), decoder, counted)
        return decoder, None
