"""Validation rules in the API: the server's rules file, and a call's own `rules`.

The server's rules (`ANOMSTREAM_API_RULES_FILE`) are read once at start-up, so a bad file stops
`serve` as it stops the worker. A call may add rules of its own (the objects of a rules file's
entries); they are judged after the server's, and one that does not parse, or takes a name
already used, is a 422 naming the rule, its place in `rules` and the position in `expr`. Jobs
keep the rules as plain entries in their options, so the job process judges what was accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from anomstream.api.problems import FieldError, Problem
from detectors.rules import SEVERITIES, Rule, RuleBook, RuleError, load_rules, parse_rules
from detectors.rules_grammar import MAX_LENGTH

MAX_RULES = 100
"""Rules one call may bring."""

Severity = Literal["low", "medium", "high", "critical"]
assert tuple(Severity.__args__) == SEVERITIES  # type: ignore[attr-defined]


class RuleIn(BaseModel):
    """One validation rule, as a rules file's entry (docs/rules.md)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, description="letters, digits or _ . : -; unique")
    expr: str = Field(
        min_length=1,
        max_length=MAX_LENGTH,
        description="the condition records must meet, e.g. `temp < 100` (docs/rules.md)",
    )
    sources: str | list[str] = Field(
        "*", description="glob pattern(s) of the sources it serves; `!pattern` excludes"
    )
    severity: Severity = Field("medium", description="the severity of its events")


def server_rules(path: Path | None) -> RuleBook | None:
    """The rules file's book (raises `RuleError`, one line, when it cannot be used)."""
    if path is None:
        return None
    book = RuleBook(load_rules(path))
    return book if len(book) else None


def entries(rules: Sequence[Rule]) -> list[dict[str, Any]]:
    """Rules back as a rules file's entries: what a job's options keep."""
    return [
        {"name": r.name, "expr": r.expr.text, "sources": list(r.sources), "severity": r.severity}
        for r in rules
    ]


def call_rules(server: RuleBook | None, inline: Sequence[RuleIn] | None) -> RuleBook | None:
    """The server's rules and the call's, or a 422 naming the call's rule at fault."""
    if not inline:
        return server
    taken = {name: "the server's rules file" for name in server.names} if server else {}
    added: list[Rule] = []
    for i, item in enumerate(inline):
        field = f"rules[{i}]"
        try:
            (rule,) = parse_rules([item.model_dump()], field)
        except RuleError as exc:
            raise Problem(
                422,
                "invalid-rule",
                str(exc),
                errors=[FieldError(field=field, message=str(exc).removeprefix(f"{field}: "))],
            ) from None
        if rule.name in taken:
            message = f"rule {rule.name!r} is defined twice ({taken[rule.name]} has it too)"
            raise Problem(
                422,
                "invalid-rule",
                f"{field}: {message}",
                errors=[FieldError(field=f"{field}.name", message=message)],
            )
        taken[rule.name] = f"rules[{i}]"
        added.append(rule)
    return RuleBook([*(server.rules if server else ()), *added])


def job_rules(options: dict[str, Any]) -> RuleBook | None:
    """A job's rules, from its options (`entries` of what the server accepted)."""
    items = options.get("rules")
    return RuleBook(parse_rules(items, "job rules")) if items else None
