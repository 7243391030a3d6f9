"""Written messages decode back to their records, whatever the names hold but a backslash
(which line protocol cannot escape, so Telegraf's writer cannot either) (unit tier)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.records import Record
from detectors.timestamps import epoch_text
from streams.codec import Limits
from streams.formats import FORMATS, decoder_for
from streams.formats.influx import InfluxOptions
from streams.formats.writers import influx_line, split_source, write

NAME = st.text(
    st.characters(codec="utf-8", exclude_characters="\n\r\t/#\\"), min_size=1, max_size=12
)
OPTIONS = [
    InfluxOptions(),
    InfluxOptions(("host", "device"), "us", "ignore", "ms"),
    InfluxOptions((), "s", "ignore", "ns"),
]


@settings(max_examples=300, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS),
    options=st.sampled_from(OPTIONS),
    parts=st.lists(NAME.filter(lambda s: s.strip() == s), min_size=1, max_size=3),
    signals=st.dictionaries(
        NAME.filter(lambda s: s.strip() == s), st.floats(-1e12, 1e12), min_size=1, max_size=4
    ),
    ts=st.integers(0, 4_000_000_000),
)
def test_a_written_record_decodes_back(
    fmt: str, options: InfluxOptions, parts: list[str], signals: dict[str, float], ts: int
) -> None:
    source = "/".join(parts[: len(options.source_tags) + 1])
    record = Record(source, float(ts), epoch_text(ts), dict(signals))
    (back,), bad = decoder_for(fmt, options)(write(record, fmt, options), None, Limits(), None)
    assert not bad
    assert (back.source, back.ts, back.signals) == (record.source, record.ts, record.signals)


def test_escapes_and_tags_as_telegraf_writes_them() -> None:
    record = Record("my cpu/web 1", 1795514400.25, "", {"a,b": 1.5, "n": None, "k=v": 2.0})
    options = InfluxOptions(source_tags=("host",))
    assert influx_line(record, options) == (
        rb"my\ cpu,host=web\ 1 a\,b=1.5,k\=v=2.0 1795514400250000000"
    )
    assert influx_line(Record("m", 1.0, "", {"x": None})) is None  # a line needs a field
    assert split_source("a/b/c", options) == ("a", {"host": "b/c"})  # decodes to a/b/c
    assert split_source("a", options) == ("a", {})


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown input format"):
        write(Record("m", 1.0, "", {"x": 1.0}), "avro")
