"""Problem details: where a validation error points, and the RFC 9457 members."""

from __future__ import annotations

import orjson
import pytest

from anomstream.api.problems import (
    MAX_ERRORS,
    MEDIA_TYPE,
    PROBLEM_TYPES,
    Problem,
    field_path,
    validation_problem,
)


@pytest.mark.parametrize(
    ("loc", "field", "row"),
    [
        (("body", "records", 3, "ts"), "records[3].ts", 3),
        (("body", "data", 0, "values", 2), "data[0].values[2]", 0),
        (("query", "target_fap"), "query.target_fap", None),
        (("body",), "body", None),
    ],
)
def test_field_paths_name_the_row(loc: tuple[int | str, ...], field: str, row: int | None) -> None:
    assert field_path(loc) == (field, row)


def test_a_problem_carries_the_rfc_9457_members_and_its_limit() -> None:
    problem = Problem(413, "too-large", "too big", limit=("max_body_bytes", 1024))
    response = problem.response("/v1/detect")
    body = orjson.loads(response.body)
    assert response.media_type == MEDIA_TYPE
    assert body == {
        "type": PROBLEM_TYPES + "too-large",
        "title": "Content Too Large",
        "status": 413,
        "detail": "too big",
        "instance": "/v1/detect",
        "limit": {"name": "max_body_bytes", "value": 1024},
    }


def test_validation_problems_summarise_and_cap_the_errors() -> None:
    errors = [{"loc": ("body", "records", i, "ts"), "msg": "bad"} for i in range(50)]
    problem = validation_problem(errors)
    assert problem.detail == "records[0].ts: bad (and 49 more)"
    assert len(problem.body()["errors"]) == MAX_ERRORS
