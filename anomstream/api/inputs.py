"""What clients send to score: the topic's record form or the columnar form, as records.

The record form is the `signals` topic's (`schemas/record.schema.json`); the columnar form is
what users of other detectors' APIs send (`signalNames` + `data` rows of `timestamp` and
`values`). Both become `detectors.records.Record`s through the stream's own validation
(`streams.codec.to_record`), so a record the worker would dead-letter is refused here too, with
its row and field named.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from anomstream.api.problems import FieldError, Problem
from anomstream.api.rules import MAX_RULES, RuleIn
from detectors.records import Invalid, Record
from detectors.timestamps import TS_MAX
from streams.codec import MAX_VALUE, Limits, decode, to_record

DEFAULT_SOURCE = "api"
"""The source of columnar rows when the request names none."""
Number = Annotated[float, Field(strict=True, ge=-MAX_VALUE, le=MAX_VALUE)]
"""A signal value within the stream's bounds (`schemas/record.schema.json`), stated in the
OpenAPI document so that clients (and schemathesis) see what the stream accepts."""


def _timestamp(value: Any) -> Any:
    """One error for a `ts` of the wrong type (a union would list one per member); its text
    and range are the stream's checks (`to_record`), refused with the row named."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("ts must be an RFC 3339 string or epoch seconds")
    return value


Timestamp = Annotated[
    Any,
    BeforeValidator(_timestamp),
    WithJsonSchema(
        {
            "description": "RFC 3339 (no offset = UTC) or epoch seconds, between 1970 and 2100",
            "anyOf": [
                {"type": "string", "format": "date-time", "minLength": 10, "maxLength": 40},
                {"type": "number", "minimum": 0, "maximum": TS_MAX},
            ],
        }
    ),
]
ModelName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
        description="a model directory under the models dir (GET /v1/models)",
    ),
]


SignalName = Annotated[str, Field(min_length=1, max_length=200)]
FORMS: dict[str, Any] = {
    "oneOf": [
        {
            "required": ["records"],
            "not": {"anyOf": [{"required": [k]} for k in ("signalNames", "data", "source")]},
        },
        {"required": ["signalNames", "data"], "not": {"required": ["records"]}},
    ],
    "not": {"required": ["target_fap", "sensitivity"]},
}
"""What the validators below check, in the OpenAPI document: one form, one knob."""


class RecordIn(BaseModel):
    """One record as the `signals` topic carries it; extra fields are ignored, as there."""

    model_config = ConfigDict(extra="ignore")

    source: str = Field(min_length=1, max_length=200)
    ts: Timestamp
    signals: dict[SignalName, Number | None] = Field(
        min_length=1, description="signal name -> a number, or null = missing"
    )


class ColumnarRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timestamp: Timestamp
    values: list[Number | None] = Field(description="one per signalNames entry, null = missing")


class Scoring(BaseModel):
    """Per-call overrides of the scoring defaults."""

    model: ModelName | None = Field(
        None,
        description="one model serving every source of the call (default: each source's model "
        "by the models' `sources` patterns, as the worker routes them)",
    )
    target_fap: float | None = Field(
        None, gt=0.0, lt=0.5, description="false alarms per record (default: the model's)"
    )
    sensitivity: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="instead of target_fap: target_fap = 10 ** (8 * sensitivity - 9), so 0.75 "
        "is the default 1e-3 and higher pages more",
    )
    rules: list[RuleIn] | None = Field(
        None,
        max_length=MAX_RULES,
        description="validation rules judged on every record besides the server's, as a rules "
        "file's entries (docs/rules.md): failures in each score's `check_failures`, rule events",
    )

    @model_validator(mode="after")
    def _one_knob(self) -> Scoring:
        if self.target_fap is not None and self.sensitivity is not None:
            raise ValueError("give target_fap or sensitivity, not both")
        return self


class DetectRequest(Scoring):
    """Records to score, in the record form (`records`) or the columnar form (`signalNames`
    and `data`, one source: `source`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra=FORMS)

    records: list[RecordIn] | None = Field(None, min_length=1)
    signal_names: list[SignalName] | None = Field(None, alias="signalNames", min_length=1)
    data: list[ColumnarRow] | None = Field(None, min_length=1)
    source: str | None = Field(
        None, min_length=1, max_length=200, description=f"columnar form: default {DEFAULT_SOURCE!r}"
    )

    @model_validator(mode="after")
    def _one_form(self) -> DetectRequest:
        columnar = self.signal_names is not None or self.data is not None
        if self.records is not None and columnar:
            raise ValueError("give records, or signalNames and data, not both")
        if self.records is None and not columnar:
            raise ValueError("give records, or signalNames and data")
        if columnar and (self.signal_names is None or self.data is None):
            raise ValueError("the columnar form needs both signalNames and data")
        if self.records is not None and self.source is not None:
            raise ValueError("source names the columnar form's series; records carry their own")
        return self

    def rows(self) -> int:
        return len(self.records if self.records is not None else self.data or [])

    def raw_records(self) -> Iterator[dict[str, Any]]:
        """Each row as the topic's record (a dict), for the stream's validation."""
        if self.records is not None:
            for rec in self.records:
                yield rec.model_dump()
            return
        names = self.signal_names or []
        source = self.source or DEFAULT_SOURCE
        for i, row in enumerate(self.data or []):
            if len(row.values) != len(names):
                raise Problem(
                    422,
                    "invalid-request",
                    f"data[{i}].values has {len(row.values)} values for {len(names)} signalNames",
                    errors=[FieldError(field=f"data[{i}].values", row=i, message="wrong length")],
                )
            yield {
                "source": source,
                "ts": row.timestamp,
                "signals": dict(zip(names, row.values, strict=True)),
            }


def limits(max_signals: int) -> Limits:
    return Limits(max_signals=max_signals, max_future=0.0)


def to_records(request: DetectRequest, max_rows: int, max_signals: int) -> list[Record]:
    """The request's records, validated as the stream validates them; refusals name the row."""
    if request.rows() > max_rows:
        raise Problem(
            422,
            "too-many-rows",
            f"{request.rows()} rows in one call; the limit is {max_rows} (setting max_rows): "
            "send more as a job (POST /v1/jobs)",
            limit=("max_rows", max_rows),
        )
    names = request.signal_names or []
    if len(names) > max_signals:
        raise signals_problem(len(names), max_signals, "signalNames", None)
    if len(set(names)) != len(names):
        raise Problem(422, "invalid-request", "signalNames holds a name twice")
    field = "records" if request.records is not None else "data"
    check = limits(max_signals)
    out = []
    for i, raw in enumerate(request.raw_records()):
        try:
            out.append(to_record(raw, None, check))
        except Invalid as exc:
            raise record_problem(exc, f"{field}[{i}]", i, max_signals) from None
    return out


def signals_problem(n: int, cap: int, field: str, row: int | None) -> Problem:
    return Problem(
        422,
        "too-many-signals",
        f"{field}: {n} signals, the limit is {cap} (setting max_signals)",
        errors=[FieldError(field=field, row=row, message=f"more than {cap} signals")],
        limit=("max_signals", cap),
    )


def record_problem(exc: Invalid, where: str, row: int | None, max_signals: int) -> Problem:
    """A record the stream would dead-letter, as a 422 naming where it is and why."""
    if exc.reason == "too_many_signals":
        return signals_problem(max_signals + 1, max_signals, f"{where}.signals", row)
    return Problem(
        422,
        "invalid-record",
        f"{where}: {exc.detail} ({exc.reason})",
        errors=[FieldError(field=where, row=row, message=exc.detail)],
    )


def jsonl_records(lines: Iterator[bytes], max_signals: int) -> Iterator[Record]:
    """Records of a JSONL file, one record (or array of records) a line, as the topic's
    messages are decoded; a bad line stops with its number (`ValueError`)."""
    check = limits(max_signals)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            good, bad = decode(line, None, check)
        except Invalid as exc:
            raise ValueError(f"line {number}: {exc.detail} ({exc.reason})") from None
        if bad:
            first = bad[0]
            raise ValueError(
                f"line {number}, record {first.index}: {first.error.detail} ({first.error.reason})"
            )
        yield from good
