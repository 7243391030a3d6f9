"""Output modes (setting `scores`): which score messages a batch publishes, while its events and
dead letters stay the same in every mode (unit tier, the processor's in-memory stand-ins)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from detectors.messages import SCORE_MODES, score_message
from streams.settings import SettingsError, load_settings
from streams.structs import InMessage
from tests.schemas import check
from tests.streams.test_processor import make, process

N, SPIKE = 210, 180  # the spike: a record of s0 long after its warm-up


def batch() -> list[InMessage]:
    """Records of 3 sources (warming, then normal, one spike) and one bad message."""
    rng = np.random.default_rng(3)
    out = []
    for i in range(N):
        values = {"a": float(rng.normal(10, 1)), "b": float(rng.normal(5, 0.5))}
        if i == SPIKE:
            values["a"] = 1000.0
        rec = {"source": f"s{i % 3}", "ts": 1795514400 + i, "signals": values}
        out.append(InMessage("signals", i % 2, i, f"s{i % 3}".encode(), orjson.dumps(rec)))
    out.insert(40, InMessage("signals", 1, 999, b"k", b"{oops"))
    return out


def run(mode: str) -> dict[str, list[Any]]:
    """What a processor in `mode` sent, per topic (scores decoded)."""
    proc, sink, _, _ = make()
    proc.scores = mode  # type: ignore[assignment]
    report = process(proc, batch())
    assert (report.scored, report.dead) == (N, 1)
    sent: dict[str, list[Any]] = {"scores": [], "anomalies": [], "signals.dlq": []}
    for topic, key, value, headers in sink.sent:
        sent[topic].append(orjson.loads(value) if topic == "scores" else (key, value, headers))
    for msg in sent["scores"]:
        check("score", msg)
    return sent


@pytest.fixture(scope="module")
def full() -> dict[str, list[Any]]:
    return run("full")


def test_the_modes_are_the_settings_values_and_full_is_the_default() -> None:
    assert SCORE_MODES == ("full", "compact", "anomalous", "off")
    assert load_settings(environ={}).scoring.scores == "full" == make()[0].scores
    env = {"ANOMSTREAM_SCORES": "compact"}
    assert load_settings(environ=env).scoring.scores == "compact"
    assert load_settings(environ=env).scoring.config() == load_settings(environ={}).scoring.config()
    with pytest.raises(SettingsError, match=r"^invalid setting scores: .*'anomalous'"):
        load_settings(environ={"ANOMSTREAM_SCORES": "some"})


def test_full_is_one_message_per_record_as_score_message_builds_it(
    full: dict[str, list[Any]],
) -> None:
    assert len(full["scores"]) == N
    assert [m["input"]["offset"] for m in full["scores"]] == list(range(N))
    spike = full["scores"][SPIKE]
    assert spike["is_anomaly"] and not spike["warming_up"]
    assert len(full["anomalies"]) == 1 and len(full["signals.dlq"]) == 1


def test_compact_keeps_the_verdict_and_each_signals_score(full: dict[str, list[Any]]) -> None:
    compact = run("compact")
    assert len(compact["scores"]) == N
    kept = ("source", "ts", "score", "is_anomaly", "threshold", "warming_up", "input")
    for small, whole in zip(compact["scores"], full["scores"], strict=True):
        assert set(small) == {*kept, "signals"}
        assert {k: small[k] for k in kept} == {k: whole[k] for k in kept}
        assert small["signals"] == {n: {"score": s["score"]} for n, s in whole["signals"].items()}
    assert len(orjson.dumps(compact["scores"])) < len(orjson.dumps(full["scores"])) / 2
    assert compact["anomalies"] == full["anomalies"]
    assert compact["signals.dlq"] == full["signals.dlq"]


def test_anomalous_keeps_the_full_messages_of_anomalous_and_warming_records(
    full: dict[str, list[Any]],
) -> None:
    some = run("anomalous")
    wanted = [m for m in full["scores"] if m["is_anomaly"] or m["warming_up"]]
    assert 0 < len(wanted) < len(full["scores"])  # the premise: some records are left out
    assert full["scores"][SPIKE] in wanted and full["scores"][0]["warming_up"]
    assert some["scores"] == wanted
    assert some["anomalies"] == full["anomalies"]
    assert some["signals.dlq"] == full["signals.dlq"]


def test_off_publishes_no_score_but_every_event_and_dead_letter(
    full: dict[str, list[Any]],
) -> None:
    off = run("off")
    assert off["scores"] == []
    assert off["anomalies"] == full["anomalies"]
    assert off["signals.dlq"] == full["signals.dlq"]


def test_the_batch_encoding_is_byte_for_byte_score_message() -> None:
    """Whatever the encoder does to be cheap, the bytes are today's `orjson.dumps`."""
    proc, sink, _, _ = make()
    seen: list[Any] = []
    outputs = proc.score_outputs

    def spy(scored: Any) -> Any:
        seen.extend(scored)
        return outputs(scored)

    proc.score_outputs = spy  # type: ignore[method-assign]
    process(proc, batch())
    cfg = proc.scorer.config
    expected = [(r.record.source.encode(), orjson.dumps(score_message(r, cfg))) for r in seen]
    assert [(k, v) for t, k, v, _ in sink.sent if t == "scores"] == expected
