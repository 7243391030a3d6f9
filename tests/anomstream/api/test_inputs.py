"""The record and columnar forms become the stream's records, refusals naming the row."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from anomstream.api.inputs import DEFAULT_SOURCE, DetectRequest, jsonl_records, to_records
from anomstream.api.problems import Problem


def test_the_record_form_is_validated_as_the_stream_validates_it() -> None:
    body = DetectRequest.model_validate(
        {
            "records": [
                {"source": "p", "ts": "2026-11-24T10:00:00Z", "signals": {"t": 1, "u": None}},
                {"source": "p", "ts": 1795514401.5, "signals": {"t": 2.5}, "extra": "ignored"},
            ]
        }
    )
    first, second = to_records(body, 10, 10)
    assert (first.source, first.ts_text, first.signals) == (
        "p",
        "2026-11-24T10:00:00Z",
        {"t": 1.0, "u": None},
    )
    assert second.ts == 1795514401.5
    assert second.ts_text == "2026-11-24T10:00:01.500Z"  # epoch seconds echoed as RFC 3339


def test_the_columnar_form_is_one_source_of_named_columns() -> None:
    body = DetectRequest.model_validate(
        {
            "signalNames": ["t", "u"],
            "data": [
                {"timestamp": "2026-11-24T10:00:00Z", "values": [1.0, None]},
                {"timestamp": "2026-11-24T10:00:01Z", "values": [2.0, 3.0]},
            ],
        }
    )
    records = to_records(body, 10, 10)
    assert [r.source for r in records] == [DEFAULT_SOURCE] * 2
    assert records[1].signals == {"t": 2.0, "u": 3.0}
    named = body.model_copy(update={"source": "line-4"})
    assert to_records(named, 10, 10)[0].source == "line-4"


def test_a_row_of_the_wrong_width_is_named() -> None:
    body = DetectRequest.model_validate(
        {
            "signalNames": ["t", "u"],
            "data": [
                {"timestamp": 1795514400, "values": [1.0, 2.0]},
                {"timestamp": 1795514401, "values": [1.0]},
            ],
        }
    )
    with pytest.raises(Problem) as caught:
        to_records(body, 10, 10)
    assert caught.value.status == 422
    assert caught.value.errors[0].row == 1
    assert caught.value.errors[0].field == "data[1].values"


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ({"source": "p", "ts": "yesterday", "signals": {"t": 1}}, "bad_ts"),
        ({"source": "p", "ts": 5e9, "signals": {"t": 1}}, "outside 1970..2100"),
    ],
)
def test_what_the_stream_would_dead_letter_is_refused_with_its_row(
    record: dict[str, object], needle: str
) -> None:
    good = {"source": "p", "ts": 1, "signals": {"t": 1}}
    body = DetectRequest.model_validate({"records": [good, good, record]})
    with pytest.raises(Problem) as caught:
        to_records(body, 10, 10)
    assert caught.value.kind == "invalid-record"
    assert caught.value.errors[0].row == 2
    assert needle in caught.value.detail


def test_limits_name_their_setting() -> None:
    body = DetectRequest.model_validate(
        {"records": [{"source": "p", "ts": i, "signals": {"t": 1}} for i in range(5)]}
    )
    with pytest.raises(Problem) as rows:
        to_records(body, 4, 10)
    assert (rows.value.status, rows.value.limit) == (422, ("max_rows", 4))
    wide = DetectRequest.model_validate(
        {"records": [{"source": "p", "ts": 1, "signals": {f"s{i}": 1 for i in range(4)}}]}
    )
    with pytest.raises(Problem) as signals:
        to_records(wide, 10, 3)
    assert signals.value.limit == ("max_signals", 3)
    assert signals.value.errors[0].row == 0


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "give records, or signalNames and data"),
        ({"records": [], "signalNames": ["a"]}, "at least 1"),
        ({"signalNames": ["a"]}, "needs both"),
        (
            {"records": [{"source": "p", "ts": 1, "signals": {"t": 1}}], "data": []},
            "at least 1",
        ),
        (
            {
                "records": [{"source": "p", "ts": 1, "signals": {"t": 1}}],
                "target_fap": 0.01,
                "sensitivity": 0.5,
            },
            "not both",
        ),
        ({"records": [{"source": "p", "ts": True, "signals": {"t": 1}}]}, "ts"),
        ({"records": [{"source": "p", "ts": 1, "signals": {"t": "7"}}]}, "signals.t"),
        ({"records": [{"source": "p", "ts": 1, "signals": {"t": 1e16}}]}, "less than or equal"),
        ({"records": [{"source": "p", "ts": 1, "signals": {"t": 1}}], "model": "../x"}, "model"),
    ],
)
def test_shapes_it_cannot_use_fail_validation(body: dict[str, object], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle.replace(".", r"\.")):
        DetectRequest.model_validate(body)


def test_jsonl_lines_decode_like_topic_messages() -> None:
    lines = [
        b'{"source": "p", "ts": 1, "signals": {"t": 1}}\n',
        b"\n",
        b'[{"source": "p", "ts": 2, "signals": {"t": 2}}, {"source": "q", "ts": 2, '
        b'"signals": {"t": 3}}]\n',
    ]
    assert [r.source for r in jsonl_records(iter(lines), 10)] == ["p", "p", "q"]
    bad = [*lines, b'{"source": "p", "signals": {"t": 1}}\n']
    with pytest.raises(ValueError, match=r"^line 4: record has no ts"):
        list(jsonl_records(iter(bad), 10))
