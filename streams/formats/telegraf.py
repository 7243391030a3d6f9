"""Telegraf's JSON output (`data_format = "json"`) -> records.

A metric is `{"name", "tags", "fields", "timestamp"}`; a message holds one, or a batch
`{"metrics": [...]}` (Telegraf's `use_batch_format`), whose bad metrics are dead-lettered
alone. The source and signals map as for line protocol (`streams.formats.influx`).
"""

from __future__ import annotations

from typing import Any

from detectors.records import Invalid, Origin, Record
from streams.codec import BadRecord, Limits, json_type, load_json, to_record
from streams.formats.influx import DEFAULT_OPTIONS, PER_SECOND, InfluxOptions, source_of


def metric_record(
    obj: Any, origin: Origin | None, limits: Limits, options: InfluxOptions, now: float | None
) -> Record:
    """One Telegraf metric -> one validated record."""
    if type(obj) is not dict:
        raise Invalid("not_record", f"a metric must be a JSON object, got {json_type(obj)}")
    name = obj.get("name")
    if name is None:
        raise Invalid("missing_source", "metric has no name")
    if type(name) is not str or not name:
        raise Invalid("bad_source", "a metric's name must be a non-empty string")
    tags = obj.get("tags", {})
    if type(tags) is not dict:
        raise Invalid("bad_tags", f"tags must be an object, got {json_type(tags)}")
    fields = obj.get("fields")
    if fields is None:
        raise Invalid("missing_signals", "metric has no fields")
    if type(fields) is not dict:
        raise Invalid("bad_signals", f"fields must be an object, got {json_type(fields)}")
    signals: dict[str, Any] = {}
    for key, value in fields.items():
        kind = type(value)
        if kind is bool:
            signals[key] = 1.0 if value else 0.0
        elif kind is str:
            if options.strings == "dead_letter":
                raise Invalid("string_field", f"field {key[:40]!r} is a string")
        else:
            signals[key] = value  # numbers; anything else is to_record's bad_signal_value
    ts = obj.get("timestamp")
    if type(ts) is int or type(ts) is float:
        ts = ts / PER_SECOND[options.json_precision]
    record = {"source": source_of(name, tags, options.source_tags), "ts": ts, "signals": signals}
    return to_record(record, origin, limits, now)


def decode_telegraf(
    value: bytes | None,
    origin: Origin | None,
    limits: Limits,
    now: float | None = None,
    options: InfluxOptions = DEFAULT_OPTIONS,
) -> tuple[list[Record], list[BadRecord]]:
    """A message -> its good records and its bad metrics (as `streams.codec.decode`)."""
    obj = load_json(value, limits)
    if type(obj) is not dict:
        raise Invalid("not_record", f"expected a JSON object, got {json_type(obj)}")
    if "metrics" not in obj:
        return [metric_record(obj, origin, limits, options, now)], []
    metrics = obj["metrics"]
    if type(metrics) is not list:
        raise Invalid("not_record", f"metrics must be an array, got {json_type(metrics)}")
    if not metrics:
        raise Invalid("empty_array", "metrics holds no metrics")
    good: list[Record] = []
    bad: list[BadRecord] = []
    for index, element in enumerate(metrics):
        sub = (
            None if origin is None else Origin(origin.topic, origin.partition, origin.offset, index)
        )
        try:
            good.append(metric_record(element, sub, limits, options, now))
        except Invalid as exc:
            bad.append(BadRecord(index, element, exc))
    return good, bad
