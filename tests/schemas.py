"""JSON Schema validators for the message contracts, compiled once (tests only)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
NAMES = ("record", "score", "event", "dead_letter", "episode")


@cache
def _registry() -> Registry:
    resources = []
    for name in NAMES:
        doc = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
        resources.append((doc["$id"], Resource.from_contents(doc)))
        resources.append((f"{name}.schema.json", Resource.from_contents(doc)))
    return Registry().with_resources(resources)


@cache
def validator(name: str) -> Draft202012Validator:
    doc = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(doc)
    return Draft202012Validator(
        doc, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


@cache
def record_validator() -> Draft202012Validator:
    """The schema of one record (`$defs/record`), for per-element checks."""
    doc = json.loads((SCHEMAS / "record.schema.json").read_text())
    return Draft202012Validator(
        {**doc["$defs"]["record"], "$defs": doc["$defs"]}, registry=_registry()
    )


def check(name: str, message: Any) -> None:
    """Raise `jsonschema.ValidationError` if `message` breaks the named schema."""
    validator(name).validate(message)
