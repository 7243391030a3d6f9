"""`--set KIND.FIELD=VALUE`: a detector parameter or a scoring knob changed for one NAB run.

For measuring a change on NAB before making it the stream's default; the parsing and its
one-line errors are apart from the runner so that the tests can check them without a run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, cast

import click

from detectors.engine import ScoringConfig
from detectors.protocol import Detector


def apply_settings(
    suite: Sequence[Detector], config: ScoringConfig, settings: Sequence[str]
) -> tuple[list[Detector], ScoringConfig]:
    """`kind.field=value` (a detector's parameter) or `config.field=value` (a scoring knob)
    applied to copies: for measuring a change on NAB before making it the stream's default."""
    detectors = list(suite)
    for item in settings:
        target, sep, text = item.partition("=")
        kind, dot, name = target.partition(".")
        if not sep or not dot or not name:
            raise click.BadParameter(f"{item!r}: expected kind.field=value", param_hint="--set")
        if kind == "config":
            objects: list[Any] = [config]
        else:
            objects = [d for d in detectors if d.kind == kind]
        if not objects:
            raise click.BadParameter(
                f"{item!r}: no detector {kind!r} in the suite", param_hint="--set"
            )
        names = {f.name for f in dataclasses.fields(objects[0]) if f.init}
        current = getattr(objects[0], name, None)
        if name not in names or type(current) not in (int, float, bool):
            raise click.BadParameter(
                f"{item!r}: {kind} has no numeric field {name!r}", param_hint="--set"
            )
        try:
            value = _parse(text, type(current))
        except ValueError:
            raise click.BadParameter(
                f"{item!r}: {text!r} is not {KIND_NAMES[type(current)]}", param_hint="--set"
            ) from None
        change: dict[str, Any] = {name: value}
        if kind == "config":
            config = dataclasses.replace(config, **change)
        else:
            try:
                detectors = [
                    dataclasses.replace(cast(Any, d), **change) if d.kind == kind else d
                    for d in detectors
                ]
            except ValueError as exc:
                raise click.BadParameter(f"{item!r}: {exc}", param_hint="--set") from None
    return detectors, config


KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false"}

CHOSEN_ON_NAB = {
    "config.known_factor": ("1", "3", "30"),
    "config.realert_after": ("30", "300"),
    "novelty.levels": ("16", "32"),
    "novelty.warm": ("100", "200"),
    "novelty.split": ("5", "10"),
    "novelty.prior": ("0.3", "3"),
    "sequence.bins": ("5", "8"),
    "sequence.order": ("1", "3"),
    "persist.span": ("200", "2000"),
}
"""The stream's defaults that were picked from NAB runs (docs/benchmarks.md), with the
neighbours `--cv-defaults` tries beside each: picked on the corpus they are scored on, they are
in-sample until a leave-one-category-out run says what they are worth on a category left out."""


def _parse(text: str, kind: type) -> int | float | bool:
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError(text)
        return text.lower() == "true"
    return int(text) if kind is int else float(text)
