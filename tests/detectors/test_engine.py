from __future__ import annotations

import itertools

import numpy as np
import orjson
import pytest

from detectors.engine import Scorer, ScoringConfig
from detectors.records import Origin, Record
from detectors.results import Scored
from detectors.source_state import SourceState


def make_records(n: int, sources: int = 4, signals: int = 3, seed: int = 0) -> list[Record]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        src = f"s{i % sources}"
        values: dict[str, float | None] = {
            f"x{k}": float(rng.normal(k, 1.0)) for k in range(signals)
        }
        out.append(Record(src, 1000.0 + i, f"t{i}", values, Origin("signals", i % 2, i)))
    return out


def score_all(records: list[Record], cuts: list[int], config: ScoringConfig | None = None):
    scorer = Scorer(config or ScoringConfig(warmup=50))
    states: dict[str, SourceState] = {}
    out: list[Scored | None] = []
    bounds = [0, *cuts, len(records)]
    for a, b in itertools.pairwise(bounds):
        out.extend(scorer.score_batch(records[a:b], states))
    return out, states, scorer


def through_json(states: dict[str, SourceState], scorer: Scorer) -> dict[str, SourceState]:
    """The states as a restarted worker gets them back from the changelog."""
    return {
        k: SourceState.from_json(orjson.loads(orjson.dumps(v.to_json(scorer.suite))), scorer.suite)
        for k, v in states.items()
    }


def test_scores_do_not_depend_on_how_the_stream_is_cut_into_batches() -> None:
    records = make_records(1200)
    one, _, _ = score_all(records, [])
    many, _, _ = score_all(records, [1, 7, 100, 101, 555, 1000])
    assert all(r is not None for r in one)
    assert [r.score for r in one] == [r.score for r in many]  # type: ignore[union-attr]
    assert [r.signals for r in one] == [r.signals for r in many]  # type: ignore[union-attr]


def test_state_through_json_resumes_exactly() -> None:
    records = make_records(1200)
    whole, _, _ = score_all(records, [])
    _, states, scorer = score_all(records[:700], [])
    restored = through_json(states, scorer)
    rest = scorer.score_batch(records[700:], restored)
    assert [r.score for r in rest] == [r.score for r in whole[700:]]  # type: ignore[union-attr]


def test_replayed_records_are_skipped_by_offset() -> None:
    records = make_records(300)
    scorer = Scorer(ScoringConfig(warmup=50))
    states: dict[str, SourceState] = {}
    scorer.score_batch(records[:200], states)
    again = scorer.score_batch(records[150:250], states)
    assert all(r is None for r in again[:50])
    assert all(r is not None for r in again[50:])


def test_a_spike_raises_an_anomaly_that_names_the_spiked_signal_first() -> None:
    records = make_records(2000, sources=2, signals=4)
    src = records[1800].source
    spiked = Record(
        src, records[1800].ts, "spike", {**records[1800].signals, "x2": 40.0}, records[1800].origin
    )
    records[1800] = spiked
    out, _, _ = score_all(records, [500, 1000])
    hit = out[1800]
    assert hit is not None and hit.is_anomaly
    from detectors.messages import anomaly_event

    event = anomaly_event(hit, ScoringConfig(warmup=50))
    assert event["signals"][0]["name"] == "x2"
    assert event["signals"][0]["contribution"] > 0.9
    assert any(d.startswith("x2/") for d in event["detectors"])


def test_no_event_while_warming_up() -> None:
    records = make_records(40, sources=1)
    records[30] = Record("s0", records[30].ts, "t", {"x0": 1e6, "x1": 1.0, "x2": 2.0}, None)
    out, _, _ = score_all(records, [], ScoringConfig(warmup=100))
    assert all(r is not None and r.warming_up and not r.is_anomaly for r in out)


def test_late_records_are_scored_flagged_and_not_learned() -> None:
    records = make_records(400, sources=1)
    late = Record("s0", 500.0, "late", {"x0": 0.0, "x1": 1.0, "x2": 2.0}, None)
    with_late, states_a, scorer = score_all([*records[:300], late, *records[300:]], [])
    without, states_b, _ = score_all(records, [])
    assert with_late[300] is not None and with_late[300].late
    assert [r.score for r in with_late[301:]] == [r.score for r in without[300:]]  # type: ignore[union-attr]
    assert (
        states_a["s0"].to_json(scorer.suite)["detectors"]
        == states_b["s0"].to_json(scorer.suite)["detectors"]
    )


def test_missing_values_are_flagged_and_score_nothing() -> None:
    records = make_records(600, sources=1)
    records[500] = Record("s0", records[500].ts, "m", {"x0": None, "x1": 1.0}, None)
    out, _, _ = score_all(records, [])
    r = out[500]
    assert r is not None
    assert r.missing == ["x0", "x2"]
    assert [s.name for s in r.signals] == ["x1"]


def test_learning_gate_keeps_an_anomaly_from_becoming_normal() -> None:
    rng = np.random.default_rng(1)
    records = [
        Record(
            "s", float(i), str(i), {"x": float(rng.normal()) + (8.0 if i >= 1500 else 0.0)}, None
        )
        for i in range(1700)
    ]
    gated, _, _ = score_all(records, [], ScoringConfig(warmup=50, learn_gate=True))
    open_, _, _ = score_all(records, [], ScoringConfig(warmup=50, learn_gate=False))
    tail_gated = sum(r.is_anomaly for r in gated[1600:])  # type: ignore[union-attr]
    tail_open = sum(r.is_anomaly for r in open_[1600:])  # type: ignore[union-attr]
    assert tail_gated > tail_open
    assert tail_gated >= 90


@pytest.mark.parametrize("signals", [1, 8, 32])
def test_record_false_alarm_rate_does_not_grow_with_the_number_of_signals(signals: int) -> None:
    records = make_records(6000, sources=2, signals=signals, seed=signals)
    out, _, _ = score_all(records, list(range(500, 6000, 500)), ScoringConfig(warmup=200))
    rate = np.mean([r.is_anomaly for r in out[2000:]])  # type: ignore[union-attr]
    assert rate <= 3e-3


def test_a_record_delivered_twice_in_one_batch_is_scored_once() -> None:
    records = make_records(300, sources=1)
    twice = [*records[:200], records[150], *records[200:]]
    out, _, _ = score_all(twice, [])
    reference, _, _ = score_all(records, [])
    assert out[200] is None
    kept = [r for r in out if r is not None]
    assert [r.score for r in kept] == [r.score for r in reference]  # type: ignore[union-attr]


def test_a_lasting_anomaly_alerts_once_then_only_when_it_gets_worse() -> None:
    """Events (alerts) fire on a new anomaly or an escalation, not on each of its records."""
    records = make_records(1500, sources=1, signals=1, seed=3)
    shifted = [
        Record(r.source, r.ts, r.ts_text, {"x0": 30.0}, r.origin) if 1200 <= i < 1260 else r
        for i, r in enumerate(records)
    ]
    out, _, _ = score_all(shifted, [1230])
    shift = range(1200, 1260)
    anomalous = [i for i in shift if (r := out[i]) is not None and r.is_anomaly]
    alerts = [i for i in shift if (r := out[i]) is not None and r.alert]
    assert anomalous[0] == 1200 and alerts[0] == 1200
    assert len(anomalous) >= 20
    assert len(alerts) <= 3, alerts


def test_alerts_ask_more_evidence_of_values_where_the_signal_has_been() -> None:
    """A signal whose first values ramp over [0, 12], then noise around 0: a spike to 12 lies
    where it has been (its score counts 10 times for alerts), a spike to 30 where it never
    was (its score stands, and novelty makes it smaller still)."""
    rng = np.random.default_rng(7)
    values = np.r_[np.linspace(0.0, 12.0, 150), rng.normal(0.0, 1.0, 2000)]
    values[1500], values[1800] = 12.0, 30.0
    records = [Record("s", float(i), str(i), {"x": float(v)}, None) for i, v in enumerate(values)]
    out, _, scorer = score_all(records, [], ScoringConfig(warmup=200))
    known, new = out[1500], out[1800]
    assert known is not None and new is not None
    factor = scorer.config.known_factor
    assert known.is_anomaly and known.alert_p == pytest.approx(min(1.0, known.p * factor))
    assert known.alertable == (known.alert_p <= scorer.config.target_fap)
    assert new.is_anomaly and new.alertable and new.alert_p == new.p
    for r in out[200:]:
        assert r is not None and r.p <= r.alert_p <= min(1.0, r.p * factor) * (1 + 1e-12)
    # messages say which value was new, and the event names novelty among its reasons
    from detectors.messages import anomaly_event, score_message

    assert score_message(new, scorer.config)["signals"]["x"]["new"] is True
    assert "new" not in score_message(known, scorer.config)["signals"]["x"]
    event = anomaly_event(new, scorer.config)
    assert event["signals"][0]["new"] is True and "x/novelty" in event["detectors"]


def test_alert_bookkeeping_survives_a_restart() -> None:
    records = make_records(900, sources=2, seed=4)
    whole, _, _ = score_all(records, [])
    _, states, scorer = score_all(records[:500], [])
    restored = through_json(states, scorer)
    rest = scorer.score_batch(records[500:], restored)
    assert [r.escalated for r in rest] == [r.escalated for r in whole[500:]]  # type: ignore[union-attr]


def test_a_state_saved_by_an_older_layout_warms_up_again_instead_of_failing() -> None:
    _, states, scorer = score_all(make_records(300, sources=1), [])
    saved = orjson.loads(orjson.dumps(states["s0"].to_json(scorer.suite)))
    kind = scorer.suite[0].kind
    del saved["calibrations"][kind]["m2"]  # a layout without a field this one expects
    restored = SourceState.from_json(saved, scorer.suite)
    assert restored.calibrations[kind]["n"].tolist() == [0.0] * 3
    other = scorer.suite[1].kind
    assert (
        restored.calibrations[other]["n"].tolist() == states["s0"].calibrations[other]["n"].tolist()
    )


def test_a_state_of_another_suite_is_refused_and_state_views_write_through() -> None:
    records = make_records(50, sources=1)
    scorer = Scorer(ScoringConfig(warmup=20))
    states: dict[str, SourceState] = {}
    scorer.score_batch(records[:30], states)
    state = next(iter(states.values()))
    # `detectors` are views into the source's blocks: an in-place write is the state
    kind = scorer.kinds[0]
    field = next(iter(state.detectors[kind]))
    state.detectors[kind][field][...] = 123.0
    assert state.detectors[kind][field].tolist() == [123.0] * len(state.signals)
    foreign = Scorer(ScoringConfig(), suite=scorer.suite[:2])
    with pytest.raises(ValueError, match="another suite"):
        foreign.score_batch(records[30:], states)
