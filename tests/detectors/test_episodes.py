"""Episodes (`detectors.episodes`): open, update and close from a source's records, the gap
tolerance, and messages that do not depend on batching, restarts or replays."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import orjson
import pytest

from detectors.config import ScoringConfig
from detectors.engine import Scorer
from detectors.episodes import (
    EPISODE_GAP,
    UPDATE_EVERY,
    advance,
    episode_bytes,
    episode_messages,
    gap_of,
)
from detectors.messages import anomaly_event
from detectors.offline import score_records
from detectors.records import Origin, Record
from detectors.results import Scored
from detectors.source_state import SourceState
from tests.schemas import SCHEMAS, check

CFG = ScoringConfig(warmup=50, learn_gate=True)
"""Anomalous records are not learnt: an injected run stays anomalous."""


def stream(n: int, spikes: dict[int, float], source: str = "pump-1") -> list[Record]:
    """One source, signals `x` (spiked at `spikes`) and `y`, read at offsets 0.. of `signals`."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        x = spikes.get(i, float(rng.normal()))
        y = float(rng.normal(5.0, 1.0))
        out.append(Record(source, 1000.0 + i, f"t{i}", {"x": x, "y": y}, Origin("signals", 0, i)))
    return out


def scored(records: list[Record], batch: int = 500) -> list[Scored]:
    return score_records(Scorer(CFG), records, batch=batch)


def test_an_anomaly_opens_an_episode_that_the_gap_keeps_open_and_the_next_normal_closes() -> None:
    spikes = {300: 40.0, 301: 45.0, 303: 60.0}  # 302 normal: within the gap
    out = scored(stream(320, spikes))
    assert [i for i, r in enumerate(out) if r.is_anomaly] == [300, 301, 303]
    msgs = episode_messages(out)
    assert [m["status"] for m in msgs] == ["open", "close"]  # critical from the start
    opened, closed = msgs[0], msgs[-1]
    assert opened["ts"] == "t300" and opened["n"] == 1
    assert closed["ts"] == f"t{303 + EPISODE_GAP + 1}"  # the first normal record past the gap
    assert {m["id"] for m in msgs} == {out[300].episode["id"]}  # type: ignore[index]
    assert [m["seq"] for m in msgs] == list(range(len(msgs)))
    assert closed["start"] == "t300" and closed["end"] == "t303"
    assert closed["n"] == 3 and closed["records"] == 4
    assert closed["peak_ts"] == "t303" and closed["peak_score"] == out[303].score
    assert closed["signals"][0]["name"] == "x" and closed["signals"][0]["contribution"] > 0.9
    # every anomalous record's event names the one episode, counting its anomalous records
    assert [anomaly_event(out[i], CFG)["episode"]["n"] for i in (300, 301, 303)] == [1, 2, 3]
    for msg in msgs:
        check("episode", msg)


def test_a_gap_longer_than_the_setting_makes_two_episodes() -> None:
    spikes = {300: 40.0, 300 + EPISODE_GAP + 2: 40.0}
    out = scored(stream(330, spikes))
    msgs = episode_messages(out)
    assert [m["status"] for m in msgs] == ["open", "close", "open", "close"]
    assert msgs[0]["id"] != msgs[2]["id"]
    assert msgs[1]["ts"] == f"t{300 + EPISODE_GAP + 1}"


def test_a_zero_gap_closes_at_the_first_normal_record_as_before() -> None:
    base = scored(stream(320, {300: 40.0}))[300]
    state = SourceState.new(Scorer(CFG).suite)
    first = fresh(base, 0, p=1e-6)
    normal = fresh(base, 1, p=0.5, anomalous=False)
    advance(state, first, CFG.target_fap, 0)
    advance(state, normal, CFG.target_fap, 0)
    assert state.episode is None and normal.episode_message is not None
    assert normal.episode_message["status"] == "close" and normal.episode is None


def fresh(base: Scored, i: int, p: float, anomalous: bool = True) -> Scored:
    """`base` as record `i` of its source with tail probability `p`."""
    rec = replace(base.record, ts=1000.0 + i, ts_text=f"u{i}", origin=Origin("signals", 0, i))
    return replace(
        base, record=rec, p=p, score=1.0 - p, is_anomaly=anomalous, episode=None,
        episode_message=None,
    )  # fmt: skip


def run(base: Scored, ps: list[float | None], gap: int = EPISODE_GAP) -> list[dict[str, Any]]:
    """Messages of a source whose records have these p (None: a normal record)."""
    state = SourceState.new(Scorer(CFG).suite)
    out = []
    for i, p in enumerate(ps):
        res = fresh(base, i, 0.5 if p is None else p, anomalous=p is not None)
        advance(state, res, CFG.target_fap, gap)
        out.append(res)
    return episode_messages(out)


@pytest.fixture(scope="module")
def base() -> Scored:
    res = scored(stream(320, {300: 40.0}))[300]
    assert res.is_anomaly
    return res


def test_an_update_is_sent_when_the_severity_rises_not_for_every_record(base: Scored) -> None:
    # low (p just under target_fap), low, medium, medium, critical, critical
    msgs = run(base, [9e-4, 8e-4, 5e-5, 4e-5, 1e-7, 1e-8])
    assert [(m["status"], m["severity"], m["n"]) for m in msgs] == [
        ("open", "low", 1),
        ("update", "medium", 3),
        ("update", "critical", 5),
    ]
    assert msgs[-1]["peak_score"] == 1.0 - 1e-7 and msgs[-1]["peak_ts"] == "u4"


def test_a_long_episode_is_updated_every_so_many_anomalous_records(base: Scored) -> None:
    msgs = run(base, [5e-4] * (2 * UPDATE_EVERY + 5) + [None] * (EPISODE_GAP + 1))
    assert [(m["status"], m["n"]) for m in msgs] == [
        ("open", 1),
        ("update", 1 + UPDATE_EVERY),
        ("update", 1 + 2 * UPDATE_EVERY),
        ("close", 2 * UPDATE_EVERY + 5),
    ]
    assert msgs[-1]["records"] == 2 * UPDATE_EVERY + 5
    assert msgs[-1]["end"] == f"u{2 * UPDATE_EVERY + 4}"


def test_normal_records_inside_the_gap_count_in_records_not_in_n(base: Scored) -> None:
    msgs = run(base, [5e-4, None, None, 5e-4, None, None, None, None], gap=3)
    closed = msgs[-1]
    assert closed["status"] == "close" and closed["n"] == 2 and closed["records"] == 4
    assert closed["ts"] == "u7" and closed["end"] == "u3"


def test_messages_do_not_depend_on_batching_nor_on_a_restart_from_saved_state() -> None:
    spikes = {300: 40.0, 302: 50.0, 340: 30.0, 341: 80.0, 345: 35.0}
    records = stream(400, spikes)
    whole = episode_bytes(scored(records))
    assert len(whole) >= 4
    assert episode_bytes(scored(records, batch=7)) == whole
    scorer = Scorer(CFG)
    states: dict[str, SourceState] = {}
    first = score_records(scorer, records[:341], states=states)  # mid-episode
    assert states["pump-1"].episode is not None
    saved = orjson.loads(orjson.dumps(states["pump-1"].to_json(scorer.suite)))
    restored = {"pump-1": SourceState.from_json(saved, scorer.suite)}
    rest = score_records(scorer, records[341:], states=restored)
    assert episode_bytes(first) + episode_bytes(rest) == whole
    # a replay of the second half against the saved state: the very same bytes again
    again = {"pump-1": SourceState.from_json(saved, scorer.suite)}
    assert episode_bytes(score_records(scorer, records[341:], states=again)) == episode_bytes(rest)


def test_a_state_saved_before_episodes_were_told_loads_and_tells_the_episode(
    base: Scored,
) -> None:
    scorer = Scorer(CFG)
    data = orjson.loads(orjson.dumps(SourceState.new(scorer.suite).to_json(scorer.suite)))
    data["episode"] = {"id": "old-episode", "start": "u0", "n": 4}
    state = SourceState.from_json(data, scorer.suite)
    res = fresh(base, 5, p=5e-4)
    advance(state, res, CFG.target_fap, EPISODE_GAP)
    assert res.episode == {"id": "old-episode", "start": "u0", "n": 5}
    assert res.episode_message is not None
    assert res.episode_message["status"] == "open" and res.episode_message["n"] == 5
    check("episode", res.episode_message)
    # one that closes before it is told again sends nothing: nobody heard it open
    quiet = SourceState.from_json(data, scorer.suite)
    normals = [fresh(base, 5 + i, p=0.5, anomalous=False) for i in range(EPISODE_GAP + 1)]
    for normal in normals:
        advance(quiet, normal, CFG.target_fap, EPISODE_GAP)
    assert quiet.episode is None and episode_messages(normals) == []


def test_the_gap_is_the_configs_where_it_has_one() -> None:
    assert gap_of(CFG) == CFG.episode_gap == EPISODE_GAP

    class WithGap:
        episode_gap = 0

    assert gap_of(WithGap()) == 0  # type: ignore[arg-type]


def test_the_example_validates_and_the_schema_refuses_an_unknown_status() -> None:
    example = json.loads((SCHEMAS / "examples" / "episode.json").read_text())
    check("episode", example)
    from jsonschema import ValidationError

    with pytest.raises(ValidationError):
        check("episode", {**example, "status": "paused"})
