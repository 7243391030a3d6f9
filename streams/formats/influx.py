"""Influx line protocol (what Telegraf's Kafka output writes by default) -> records.

One line is one record: the source is the measurement and the values of the configured tags
joined by `SOURCE_SEPARATOR`, the signals are the fields, the time the line's timestamp in
the configured precision. A bad line is dead-lettered alone, as a bad element of a JSON array
is, and the records are then validated by `streams.codec.to_record`: the same limits and
reasons as JSON. A small parser of our own: `line-protocol-parser` (PyPI, C) parses a line about
twice as fast (4 vs 9 µs) but would add a compiled runtime dependency; the tests read every case
with both (figures: `bench/formats.py`, docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from detectors.records import Invalid, Origin, Record
from streams.codec import BadRecord, Limits, check_size, to_record

Precision = Literal["ns", "us", "ms", "s"]
Strings = Literal["ignore", "dead_letter"]
PER_SECOND: dict[str, int] = {"ns": 1_000_000_000, "us": 1_000_000, "ms": 1_000, "s": 1}
SOURCE_SEPARATOR = "/"
"""Between the measurement and each source tag's value: `cpu/host-1/sda`."""
TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
FALSE = frozenset({"f", "F", "false", "False", "FALSE"})
_DIGITS = frozenset("0123456789.")
_NAME_ESCAPES = (("\\,", ","), ("\\ ", " "))
_KEY_ESCAPES = (*_NAME_ESCAPES, ("\\=", "="))


@dataclass(frozen=True, slots=True)
class InfluxOptions:
    """How metrics map to records (settings `influx_*`, shared by `telegraf-json`)."""

    source_tags: tuple[str, ...] = ("host",)
    precision: Precision = "ns"
    strings: Strings = "ignore"
    json_precision: Precision = "s"
    """Units of Telegraf JSON's `timestamp` (its `json_timestamp_units`, 1s by default)."""


DEFAULT_OPTIONS = InfluxOptions()


def source_of(name: str, tags: dict[str, Any], source_tags: tuple[str, ...]) -> str:
    """The source id: the measurement, then the value of each source tag the metric has."""
    if not source_tags:
        return name
    return SOURCE_SEPARATOR.join([name, *(str(tags[tag]) for tag in source_tags if tag in tags)])


def bad(detail: str) -> Invalid:
    return Invalid("bad_line_protocol", detail)


def _cut(text: str, sep: str, quotes: bool, start: int = 0) -> int:
    """The index of the first `sep` from `start` that is neither escaped by a backslash nor,
    with `quotes`, inside a string field value (a `"` right after `=` opens one); -1: none."""
    inside = False
    i, end = start, len(text)
    while i < end:
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if quotes and char == '"' and (inside or (i and text[i - 1] == "=")):
            inside = not inside
        elif char == sep and not inside:
            return i
        i += 1
    if inside:
        raise bad("unterminated string field value")
    return -1


def _split(text: str, sep: str, quotes: bool) -> list[str]:
    """`text` cut at each `sep` that `_cut` finds; the pieces keep their escapes."""
    pieces: list[str] = []
    start = 0
    while (i := _cut(text, sep, quotes, start)) >= 0:
        pieces.append(text[start:i])
        start = i + 1
    pieces.append(text[start:])
    return pieces


def _sections(line: str) -> list[str]:
    """The measurement and tags, the fields, and the timestamp if any, as the spec scans
    them: quotes matter in the fields only."""
    head_end = _cut(line, " ", quotes=False)
    if head_end < 0:
        return [line]
    body_start = head_end
    while body_start < len(line) and line[body_start] == " ":
        body_start += 1
    body_end = _cut(line, " ", quotes=True, start=body_start)
    if body_end < 0:
        return [line[:head_end], line[body_start:]]
    return [line[:head_end], line[body_start:body_end], *line[body_end:].split()]


def _unescape(text: str, escapes: tuple[tuple[str, str], ...] = _KEY_ESCAPES) -> str:
    """A tag key, tag value or field key (or, with `_NAME_ESCAPES`, a measurement) without its
    escapes; a backslash before another character stays, as the spec says."""
    if "\\" not in text:
        return text
    for escaped, char in escapes:
        text = text.replace(escaped, char)
    return text


def _pair(text: str, what: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if "\\" in key:  # an escaped `=` in the key: find the first unescaped one
        parts = _split(text, "=", quotes=False)
        key, sep, value = parts[0], "=", "=".join(parts[1:])
        if len(parts) < 2:
            sep = ""
    if not sep or not key:
        raise bad(f"{what} {text[:40]!r} is not key=value")
    return _unescape(key), value


def field_value(raw: str, name: str) -> float | str:
    """A field's value: float, `3i`, `3u`, a boolean as 1.0/0.0, or a string (its text)."""
    if not raw:
        raise bad(f"field {name[:40]!r} has no value")
    last = raw[-1]
    if raw[0] == '"':
        if len(raw) < 2 or last != '"':
            raise bad(f"field {name[:40]!r}: bad string {raw[:40]!r}")
        return raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if "_" in raw or " " in raw:  # Python's number syntax is wider than the spec's
        raise bad(f"field {name[:40]!r}: bad value {raw[:40]!r}")
    try:
        if last == "i":
            return float(int(raw[:-1]))
        if last == "u":
            number = int(raw[:-1])
            if number < 0 or raw[0] == "-":
                raise ValueError
            return float(number)
        return float(raw)
    except ValueError:
        pass
    if raw in TRUE:
        return 1.0
    if raw in FALSE:
        return 0.0
    raise bad(f"field {name[:40]!r}: bad value {raw[:40]!r}")


def parse_line(line: str) -> tuple[str, dict[str, str], dict[str, float | str], int | None]:
    """measurement, tags, fields and timestamp (None: absent) of one line."""
    if "\\" in line or '"' in line or "  " in line:
        return _parse_escaped(line)
    # What Telegraf writes nearly always: no escapes, no strings, one space between sections.
    sections = line.split(" ")
    if not 2 <= len(sections) <= 3 or not sections[0] or not sections[1]:
        return _parse_escaped(line)  # for its error message
    head = sections[0].split(",")
    name = head[0]
    tags: dict[str, str] = {}
    for tag in head[1:]:
        key, sep, value = tag.partition("=")
        if not sep or not key or not value:
            return _parse_escaped(line)
        tags[key] = value
    fields: dict[str, float | str] = {}
    for piece in sections[1].split(","):
        key, sep, raw = piece.partition("=")
        if key and raw and raw[-1] in _DIGITS and "_" not in raw:
            try:
                fields[key] = float(raw)
                continue
            except ValueError:
                pass
        if not sep or not key:
            raise bad(f"field {piece[:40]!r} is not key=value")
        fields[key] = field_value(raw, key)
    if not name or name[0] == "#":
        raise bad("no measurement")
    return name, tags, fields, _stamp(sections) if len(sections) == 3 else None


def _stamp(sections: list[str]) -> int:
    try:
        if "_" in sections[2]:
            raise ValueError
        return int(sections[2])
    except ValueError:
        raise bad(f"timestamp {sections[2][:30]!r} is not an integer") from None


def _parse_escaped(line: str) -> tuple[str, dict[str, str], dict[str, float | str], int | None]:
    """`parse_line` for lines with escapes, string fields or runs of spaces."""
    sections = _sections(line)
    if len(sections) < 2:
        raise bad("a line needs a measurement and at least one field")
    if len(sections) > 3:
        raise bad(f"{len(sections)} space-separated sections, expected 2 or 3")
    head = _split(sections[0], ",", quotes=False) if "\\" in sections[0] else sections[0].split(",")
    name = _unescape(head[0], _NAME_ESCAPES)
    if not name or name.startswith("#"):
        raise bad("no measurement")
    tags = dict(_pair(tag, "tag") for tag in head[1:])
    for value in tags.values():
        if not value:
            raise bad("a tag has no value")
    tags = {key: _unescape(value) for key, value in tags.items()}
    body = sections[1]
    pieces = _split(body, ",", quotes=True) if ("\\" in body or '"' in body) else body.split(",")
    fields: dict[str, float | str] = {}
    for piece in pieces:
        key, raw = _pair(piece, "field")
        fields[key] = field_value(raw, key)
    return name, tags, fields, _stamp(sections) if len(sections) == 3 else None


def line_record(
    line: str,
    origin: Origin | None,
    limits: Limits,
    options: InfluxOptions,
    now: float | None,
) -> Record:
    """One line -> one validated record; a line without a timestamp takes `now` (the
    message's time), as InfluxDB gives it the server's."""
    name, tags, fields, stamp = parse_line(line)
    signals = fields
    if '"' in line:  # a string field, maybe
        signals = {}
        for key, value in fields.items():
            if type(value) is str:
                if options.strings == "dead_letter":
                    raise Invalid("string_field", f"field {key[:40]!r} is a string")
                continue
            signals[key] = value
    if stamp is None:
        if now is None:
            raise Invalid("missing_ts", "line has no timestamp")
        ts: float = now
    else:
        ts = stamp / PER_SECOND[options.precision]
    obj = {"source": source_of(name, tags, options.source_tags), "ts": ts, "signals": signals}
    return to_record(obj, origin, limits, now)


def decode_influx(
    value: bytes | None,
    origin: Origin | None,
    limits: Limits,
    now: float | None = None,
    options: InfluxOptions = DEFAULT_OPTIONS,
) -> tuple[list[Record], list[BadRecord]]:
    """A message of lines -> its good records and its bad lines (raw bytes, index = line
    number from 0); blank lines and `#` comments are skipped."""
    value = check_size(value, limits)
    try:
        lines: list[str | bytes] = list(value.decode().split("\n"))
    except UnicodeDecodeError:  # only the lines that are not UTF-8 are bad
        lines = list(value.split(b"\n"))
    good: list[Record] = []
    bad_lines: list[BadRecord] = []
    for index, raw in enumerate(lines):
        try:
            line = raw if isinstance(raw, str) else raw.decode()
        except UnicodeDecodeError as exc:
            bad_lines.append(BadRecord(index, raw, Invalid("bad_utf8", str(exc)[:200])))
            continue
        line = line.strip(" \t\r")
        if not line or line[0] == "#":
            continue
        sub = (
            None if origin is None else Origin(origin.topic, origin.partition, origin.offset, index)
        )
        try:
            good.append(line_record(line, sub, limits, options, now))
        except Invalid as exc:
            bad_lines.append(BadRecord(index, line.encode(), exc))
    if not good and not bad_lines:
        raise Invalid("empty_array", "the message holds no lines")
    return good, bad_lines
