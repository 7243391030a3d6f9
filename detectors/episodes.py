"""Anomaly episodes: a source's anomalous records, with short normal gaps, as one thing to track.

An episode opens at a source's first anomalous record, stays open over up to `gap` normal
records in a row (setting `episode_gap`: a fault often flickers around the threshold), and
closes at the record that makes the gap longer. It is told to the `episodes` topic as messages
(`open`, `update`, `close`; schema `schemas/episode.schema.json`), each the whole episode so
far: the topic is compacted by source, so its last message per source is that source's latest
episode. An `update` is sent when the episode's severity rises, or every `UPDATE_EVERY`
anomalous records, not per record (a stuck source would otherwise fill the topic).

Per record and source, in record order (`detectors.collect`), from the source's state alone,
so the stream, a replay after a crash and `anomstream detect` build the same messages, bytes
and ids included. A source that goes silent mid-episode keeps it open until its next record.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from detectors.alerting import episode_id
from detectors.config import ScoringConfig
from detectors.fusion import severity
from detectors.messages import by_model, contributions
from detectors.results import Scored
from detectors.source_state import SourceState

EPISODE_GAP = ScoringConfig().episode_gap
"""Normal records in a row an episode stays open over, by default. At the default target_fap
(1e-3) an unrelated false alarm falls within 3 records of an episode's end about 0.3 % of the
time, so episodes rarely merge by chance, and a close is known 4 records after the last anomaly."""
UPDATE_EVERY = 100
"""Anomalous records between two `update`s of an episode whose severity does not rise: the
same count after which an anomaly that does not get worse raises an event again
(`ScoringConfig.realert_after`'s default)."""
MAX_EPISODE_SIGNALS = 5
"""Signals an episode message lists: those that contributed most, over its anomalous records."""
SEVERITIES = ("low", "medium", "high", "critical")


def gap_of(config: ScoringConfig) -> int:
    """The configured gap (`episode_gap`)."""
    return config.episode_gap


def advance(state: SourceState, scored: Scored, target_fap: float, gap: int) -> None:
    """One record of the source: its episode (`state.episode`) grows, waits or closes; the
    record's `episode` (what its event carries) and `episode_message` (None, or the message it
    sends) are set. Copies on write: a state dict already handed out is never changed."""
    found = state.episode
    if not scored.is_anomaly:
        if found is None:
            return
        ep = {**_filled(found), "quiet": int(found.get("quiet", 0)) + 1}
        if ep["quiet"] <= gap:
            state.episode = ep
            return
        state.episode = None
        if ep["seq"]:  # an episode saved before episodes were told closes untold
            scored.episode_message = message(ep, "close", scored, target_fap)
        return
    rec = scored.record
    if found is None:
        ep = _opened(scored)
    else:
        ep = _filled(found)
        ep["records"] += ep["quiet"] + 1
        ep["quiet"] = 0
        ep["n"] += 1
        if not scored.late:
            ep["end"] = rec.ts_text
    if scored.p < ep["peak_p"]:
        ep["peak_p"], ep["peak_ts"] = scored.p, rec.ts_text
    shares = dict(ep["signals"])
    for s, share in contributions(scored.signals, by_model(scored)):
        if share > 0:
            shares[s.name] = shares.get(s.name, 0.0) + share
    ep["signals"] = shares
    state.episode = ep
    scored.episode = {"id": ep["id"], "start": ep["start"], "n": ep["n"]}
    level = severity(ep["peak_p"], target_fap)
    if not ep["seq"]:
        scored.episode_message = message(ep, "open", scored, target_fap)
    elif _rank(level) > _rank(ep["told_severity"]) or ep["n"] - ep["told_n"] >= UPDATE_EVERY:
        scored.episode_message = message(ep, "update", scored, target_fap)


def _opened(scored: Scored) -> dict[str, Any]:
    rec = scored.record
    ts = rec.ts_text
    return {
        "id": episode_id(rec.source, ts, rec.origin),
        "start": ts,
        "n": 1,
        "end": ts,
        "records": 1,
        "quiet": 0,
        "peak_p": 1.0,
        "peak_ts": ts,
        "signals": {},
        "seq": 0,
        "told_n": 0,
        "told_severity": None,
    }


def _filled(saved: dict[str, Any]) -> dict[str, Any]:
    """A copy of a saved episode, with what a state saved before episodes were told lacks
    (it kept `id`, `start`, `n`): no message sent yet, its peak from the next record on."""
    return {
        "end": saved["start"],
        "records": saved["n"],
        "quiet": 0,
        "peak_p": 1.0,
        "peak_ts": saved["start"],
        "signals": {},
        "seq": 0,
        "told_n": 0,
        "told_severity": None,
        **saved,
    }


def _rank(level: str | None) -> int:
    return -1 if level is None else SEVERITIES.index(level)


def message(ep: dict[str, Any], status: str, scored: Scored, target_fap: float) -> dict[str, Any]:
    """The episode as told now (schema `episode`), sent by `scored`'s record; counts it told."""
    level = severity(ep["peak_p"], target_fap)
    n = ep["n"]
    ranked = sorted(ep["signals"].items(), key=lambda item: (-item[1], item[0]))
    msg = {
        "id": ep["id"],
        "seq": ep["seq"],
        "source": scored.record.source,
        "status": status,
        "ts": scored.record.ts_text,
        "start": ep["start"],
        "end": ep["end"],
        "n": n,
        "records": ep["records"],
        "peak_score": 1.0 - ep["peak_p"],
        "peak_ts": ep["peak_ts"],
        "severity": level,
        "signals": [
            {"name": name, "contribution": min(total / n, 1.0)}
            for name, total in ranked[:MAX_EPISODE_SIGNALS]
        ],
    }
    ep["seq"], ep["told_n"], ep["told_severity"] = ep["seq"] + 1, n, level
    return msg


def episode_messages(scored: Iterable[Scored | None]) -> list[dict[str, Any]]:
    """The episode messages of a batch's results, in record order."""
    return [res.episode_message for res in scored if res is not None and res.episode_message]


def episode_bytes(scored: Iterable[Scored | None]) -> list[tuple[bytes, bytes]]:
    """The batch's episode messages as (key = source, JSON) pairs, in record order."""
    dumps = orjson.dumps
    return [(msg["source"].encode(), dumps(msg)) for msg in episode_messages(scored)]
