"""The worker's status document, built from real states in memory (unit tier, no broker)."""

from __future__ import annotations

import fnmatch
import logging
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from detectors.models import ModelBook
from streams.settings import load_settings
from streams.status import StatusReporter, warm_up_needs
from streams.structs import InMessage
from tests.streams.test_processor import make, process


class FakeModel:
    """What the status reads of a served model: its spec."""

    def __init__(self, name: str, version: str, signals: tuple[str, ...], sources: tuple[str, ...]):
        self.spec = SimpleNamespace(
            name=name,
            version=version,
            signals=signals,
            sources=sources,
            label=f"{name}-{version}",
            serves=lambda source: any(fnmatch.fnmatchcase(source, p) for p in sources),
        )


def batch(sources: dict[str, int], start: int = 0) -> list[InMessage]:
    """`n` records for each source (signals a and b; `late` has only a, then b too)."""
    out = []
    offset = start
    for source, n in sources.items():
        for i in range(n):
            signals = {"a": float(i % 5), "b": 1.0 + i % 3}
            rec = {"source": source, "ts": 1795514400 + start + i, "signals": signals}
            out.append(InMessage("signals", 0, offset, source.encode(), orjson.dumps(rec)))
            offset += 1
    return out


def reporter(models: ModelBook | None = None, **kwargs: Any) -> tuple[StatusReporter, Any]:
    proc, _, _, _ = make()  # warm-up of 20 values per detector
    settings = load_settings(environ={"ANOMSTREAM_BROKER": "127.0.0.1:9092"})
    book = models if models is not None else ModelBook(None)
    return StatusReporter(settings, proc.states, book, proc.metrics, **kwargs), proc


def test_the_warming_sources_say_which_signals_hold_them_back_and_for_how_long() -> None:
    status, proc = reporter()
    process(proc, batch({"warm": 40, "young": 5}))
    doc = status.build()
    assert doc["sources"]["held"] == 2
    assert doc["sources"]["warming"] == 1
    [young] = doc["sources"]["warming_listed"]
    assert young["source"] == "young" and young["records"] == 5
    # both signals hold it back: some fused detector has calibrated none of the 20 values yet
    assert young["signals"] == {"a": 20, "b": 20} and young["needs"] == 20
    assert warm_up_needs(proc.states._cache["warm"][1], proc.scorer) == {}
    process(proc, batch({"young": 12}, start=100))
    [older] = status.build()["sources"]["warming_listed"]
    assert older["records"] == 17 and 0 < older["needs"] < 20


def test_the_warming_list_is_capped_and_says_so() -> None:
    status, proc = reporter(listed=3)
    process(proc, batch({f"s{i:02}": 2 for i in range(7)}))
    sources = status.build()["sources"]
    assert sources["warming"] == 7
    assert [w["source"] for w in sources["warming_listed"]] == ["s00", "s01", "s02"]
    assert sources["warming_truncated"] is True


def test_models_say_what_they_serve_and_refusals_say_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    book = ModelBook(None)
    book.models["pumps"] = FakeModel("pumps", "3f2a", ("a", "b"), ("pump-*",))  # type: ignore[assignment]
    book.models["fans"] = FakeModel("fans", "9c01", ("a",), ("fan-*",))  # type: ignore[assignment]
    book.errors["broken"] = "model.json: unsupported model format 9"
    status, proc = reporter(book)
    process(proc, batch({"pump-1": 3, "pump-2": 3, "other": 3}))
    with caplog.at_level(logging.INFO, logger="streams.status"):
        status.note_models()
        status.note_models()  # nothing changed: nothing logged again
    models = status.build()["models"]
    assert models["loaded"] == [
        {
            "directory": "fans",
            "name": "fans",
            "version": "9c01",
            "signals": ["a"],
            "sources": ["fan-*"],
            "sources_served": 0,
        },
        {
            "directory": "pumps",
            "name": "pumps",
            "version": "3f2a",
            "signals": ["a", "b"],
            "sources": ["pump-*"],
            "sources_served": 2,
        },
    ]
    assert models["refused"] == [
        {"directory": "broken", "reason": "model.json: unsupported model format 9"}
    ]
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "model fans 9c01 (directory fans) serves sources fan-* with signals a",
        "model pumps 3f2a (directory pumps) serves sources pump-* with signals a, b",
    ]


def test_partitions_lag_notes_and_the_document_is_json() -> None:
    status, proc = reporter(notes=["producing without idempotence"])
    doc = status.build()
    assert doc["partitions"] is None and doc["consumer_lag"] is None  # not assigned yet
    status.partitions = [2, 0]
    proc.metrics.observe_lag(0, 12)
    proc.metrics.observe_lag(3, 5)  # a partition this worker no longer holds
    doc = status.build()
    assert doc["partitions"] == [0, 2]
    assert doc["consumer_lag"] == {"0": 12}
    assert doc["notes"] == ["producing without idempotence"]
    assert doc["app_id"] == "anomstream" and doc["broker"] == "127.0.0.1:9092"
    assert doc["producer_idempotence"] is True and doc["topic"] == "signals"
    assert orjson.loads(orjson.dumps(doc)) == doc


def test_served_counts_are_recounted_within_a_budget_of_lookups() -> None:
    clock = [0.0]
    book = ModelBook(None)
    book.models["all"] = FakeModel("all", "1", ("a",), ("*",))  # type: ignore[assignment]
    status, proc = reporter(book, clock=lambda: clock[0], count_rate=2)
    process(proc, batch({"x": 2, "y": 2}))
    assert status.build()["models"]["loaded"][0]["sources_served"] == 2
    process(proc, batch({"z": 2, "w": 2}, start=100))
    clock[0] = 1.0  # 4 held at 2 lookups/s: recounted every 2 s
    assert status.build()["models"]["loaded"][0]["sources_served"] == 2
    clock[0] = 2.0
    assert status.build()["models"]["loaded"][0]["sources_served"] == 4
