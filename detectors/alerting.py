"""The alerting policy: which anomalous records become events, and the ids of episodes.

Per record and source, after scoring: a record's score never depends on it, only whether it
raises an event (`Scored.alert`). How records form episodes is `detectors.episodes`.
"""

from __future__ import annotations

from hashlib import blake2b

from detectors.records import Origin
from detectors.source_state import SourceState

ESCALATION = 3.0
"""An alert within `realert_after` records needs a p this many times smaller (half a severity
step; 10x cost NAB points: docs/benchmarks.md)."""
P_FLOOR = 1e-15
"""Below this, p is beyond what any calibration knows (and 1 - p rounds to 1)."""


def episode_id(source: str, ts_text: str, origin: Origin | None = None) -> str:
    """Deterministic id of the episode that opened at `ts_text` with the record read at
    `origin` (two records of a source may share a time; a replay reads the same origin)."""
    return blake2b(f"{source}|{ts_text}{origin_text(origin)}".encode(), digest_size=10).hexdigest()


def origin_text(origin: Origin | None) -> str:
    """The input record's place, for ids; nothing for records without one (offline files)."""
    if origin is None:
        return ""
    return f"|{origin.topic}|{origin.partition}|{origin.offset}|{origin.item}"


def escalate(state: SourceState, p: float, realert_after: int) -> bool:
    """Whether `p` beats the last escalated record's, which counts for `realert_after`.

    Threshold-free on purpose: the same rule gives the NAB runner its alert score.
    """
    state.alert_age += 1
    p = max(p, P_FLOOR)
    if p * ESCALATION < state.alert_p or state.alert_age > realert_after:
        state.alert_p, state.alert_age = p, 0
        return True
    return False
