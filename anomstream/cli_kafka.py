"""The options every command that talks to Kafka shares, and the settings they build."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from streams.settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def kafka_options(fun: F) -> F:
    """Options every command that talks to Kafka shares."""
    fun = click.option("--config", type=click.Path(path_type=Path), help="TOML config file")(fun)
    fun = click.option("--broker", help="bootstrap servers, e.g. kafka://localhost:9092")(fun)
    return fun


def settings_from(config: Path | None, broker: str | None, **overrides: Any) -> Settings:
    return load_settings(config, broker=broker, **overrides)
