"""Everything the scorer remembers about one source, and its JSON snapshot.

The snapshot is the contract (it goes to a changelog-backed table and comes back after a crash or
a rebalance): plain JSON, versioned per detector, carrying the input offsets it has applied so a
replayed record is recognised and not learnt twice.

Layout versions: 1 kept the applied offsets by partition only; 2 keys them by input topic and
partition and keeps the wall-clock time the source was last seen. A version 1 state is read:
its offsets go to the first input topic the source is seen on again (a worker reads one topic).
A snapshot that cannot be read at all raises `UnreadableState`, with a short reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from detectors.autoencoder import WindowState
from detectors.modes import ModeMemory
from detectors.protocol import Detector
from detectors.state import Packing, State, from_snapshot

log = logging.getLogger(__name__)

STATE_VERSION = 2
MAX_SOURCE_SIGNALS = 100
"""Signal names one source may have. A source's snapshot takes ~6.4 KB per signal with the
default suite (measured: 638 KB for 100 signals, 48 seasonal bins), so 100 keeps the largest
state at ~60 % of a 1 MiB changelog message, leaving room for a model's window and the
bookkeeping. More seasonal bins make each signal bigger (512 bins: ~21 KB): lower the cap."""

Applied = dict[tuple[str, int], int]
"""(input topic, partition) -> highest offset whose results were acknowledged."""


class UnreadableState(ValueError):
    """A snapshot this version cannot read; `reason` is a short label (a metric label)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


_PACKINGS: dict[tuple[Any, ...], Packing] = {}


def packing_of(suite: Sequence[Detector]) -> Packing:
    """The suite's `Packing`: each detector's state fields, then each calibration's."""
    slots = [d.fields for d in suite] + [d.calibration.fields for d in suite]
    key = tuple(tuple(fields.items()) for fields in slots)
    packing = _PACKINGS.get(key)
    if packing is None:
        packing = _PACKINGS[key] = Packing(slots)
    return packing


@dataclass(slots=True)
class SourceState:
    """One source's detector and calibration state (one row per signal) and bookkeeping.

    The numbers live in two blocks laid out by the suite's `Packing` (`scalars`: fields x
    signals, `wide`: signals x numbers); `detectors` and `calibrations` are views into them.
    """

    signals: list[str]
    packing: Packing
    scalars: np.ndarray
    wide: np.ndarray
    kinds: list[str]
    applied: Applied = field(default_factory=dict)
    legacy: dict[int, int] | None = None
    """Partition -> offset of a version 1 snapshot, until `adopt` gives them their topic."""
    seen: float | None = None
    """Wall-clock time (epoch seconds) of the source's last record: eviction counts from it."""
    last_ts: float = float("-inf")
    records: int = 0
    episode: dict[str, Any] | None = None
    """Open anomaly episode (`detectors.episodes`): {"id", "start", "n"}, what its messages
    told and when to tell more; a state saved before the episodes topic kept the first three."""
    alert_p: float = 1.0
    """p of the last escalated record (`detectors.alerting.escalate`) and records since."""
    alert_age: int = 1 << 30
    window: WindowState | None = None
    """The autoencoder's ring buffer, when a model serves this source."""
    modes: ModeMemory | None = None
    """The operating modes it has shown (`detectors.modes`)."""
    failing: list[str] = field(default_factory=list)
    """Validation rules its last judged record failed: a rule event only when one starts."""
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {name: i for i, name in enumerate(self.signals)}

    @classmethod
    def new(cls, suite: Sequence[Detector]) -> SourceState:
        packing = packing_of(suite)
        scalars, wide = packing.new(0)
        return cls([], packing, scalars, wide, [d.kind for d in suite])

    @property
    def detectors(self) -> dict[str, State]:
        """Detector kind -> its state, as views (write in place; see `Packing`)."""
        views = self.packing.views(self.scalars, self.wide)
        return dict(zip(self.kinds, views[: len(self.kinds)], strict=True))

    @property
    def calibrations(self) -> dict[str, State]:
        """Detector kind -> its calibration's state, as views (write in place)."""
        views = self.packing.views(self.scalars, self.wide)
        return dict(zip(self.kinds, views[len(self.kinds) :], strict=True))

    def add_signals(self, names: Sequence[str], suite: Sequence[Detector]) -> None:
        """Start fresh (warming) rows for signals seen for the first time."""
        fresh = [n for n in dict.fromkeys(names) if n not in self.index]
        if not fresh:
            return
        scalars, wide = self.packing.new(len(fresh))
        self.scalars = np.concatenate([self.scalars, scalars], axis=1)
        self.wide = np.concatenate([self.wide, wide], axis=0)
        for name in fresh:
            self.index[name] = len(self.signals)
            self.signals.append(name)

    def adopt(self, topic: str) -> None:
        """A version 1 state's offsets belong to the first input topic it sees (only one)."""
        for partition, offset in (self.legacy or {}).items():
            self.applied.setdefault((topic, partition), offset)
        self.legacy = None

    def to_json(self, suite: Sequence[Detector]) -> dict[str, Any]:
        if [d.kind for d in suite] != self.kinds:
            raise ValueError("a source state saved with another suite")
        snaps = self.packing.snapshots(self.scalars, self.wide)
        n = len(suite)
        applied: dict[str, dict[str, int]] = {}
        for (topic, partition), offset in self.applied.items():
            applied.setdefault(topic, {})[str(partition)] = offset
        if self.legacy:  # not adopted yet: kept under no topic
            applied[""] = {str(p): o for p, o in self.legacy.items()}
        return {
            "v": STATE_VERSION,
            "signals": self.signals,
            "applied": applied,
            "seen": self.seen,
            "last_ts": self.last_ts if self.last_ts != float("-inf") else None,
            "records": self.records,
            "episode": self.episode,
            "alert": [self.alert_p, self.alert_age],
            "detectors": {
                d.kind: {"v": d.state_version, **snap}
                for d, snap in zip(suite, snaps[:n], strict=True)
            },
            "calibrations": {d.kind: snap for d, snap in zip(suite, snaps[n:], strict=True)},
            "window": None if self.window is None else self.window.to_json(),
            "modes": None if self.modes is None else self.modes.to_json(),
            "failing": self.failing,
        }

    @classmethod
    def from_bytes(cls, blob: bytes, suite: Sequence[Detector]) -> SourceState:
        """`from_json` of stored bytes; anything unreadable raises `UnreadableState`."""
        try:
            data = orjson.loads(blob)
        except orjson.JSONDecodeError as exc:
            raise UnreadableState("invalid_json", str(exc)) from None
        if not isinstance(data, dict):
            raise UnreadableState("wrong_shape", f"a JSON {type(data).__name__}, not an object")
        try:
            return cls.from_json(data, suite)
        except UnreadableState:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise UnreadableState("wrong_shape", f"{type(exc).__name__}: {exc}") from None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], suite: Sequence[Detector]) -> SourceState:
        """Rebuild from a snapshot (of this layout or version 1); a detector whose state
        version changed starts afresh."""
        version = data.get("v")
        while isinstance(version, int) and version in MIGRATIONS:
            data = MIGRATIONS[version](data)
            version = data.get("v")
        if data.get("v") != STATE_VERSION:
            raise UnreadableState("unknown_version", f"source state version {data.get('v')!r}")
        signals = list(data["signals"])
        n = len(signals)
        detectors: dict[str, State] = {}
        calibrations: dict[str, State] = {}
        for det in suite:
            snap = data["detectors"].get(det.kind)
            cal = data["calibrations"].get(det.kind)
            if snap is None or cal is None or snap.get("v") != det.state_version:
                log.warning("detector %s: no usable saved state, warming up again", det.kind)
                detectors[det.kind] = det.new_state(n)
                calibrations[det.kind] = det.calibration.new_state(n)
                continue
            try:
                detectors[det.kind] = from_snapshot(snap, det.fields, n)
                calibrations[det.kind] = from_snapshot(cal, det.calibration.fields, n)
            except (KeyError, ValueError) as exc:  # saved by an older layout
                log.warning(
                    "detector %s: saved state unusable (%s), warming up again", det.kind, exc
                )
                detectors[det.kind] = det.new_state(n)
                calibrations[det.kind] = det.calibration.new_state(n)
        last_ts = data.get("last_ts")
        alert = data.get("alert", [1.0, 1 << 30])
        window = data.get("window")
        packing = packing_of(suite)
        scalars, wide = packing.pack(
            [detectors[d.kind] for d in suite] + [calibrations[d.kind] for d in suite], n
        )
        return cls(
            signals=signals,
            packing=packing,
            scalars=scalars,
            wide=wide,
            kinds=[d.kind for d in suite],
            applied={
                (topic, int(p)): int(o)
                for topic, offsets in data["applied"].items()
                if topic
                for p, o in offsets.items()
            },
            legacy={int(p): int(o) for p, o in data["applied"][""].items()}
            if data["applied"].get("")
            else None,
            seen=None if data.get("seen") is None else float(data["seen"]),
            last_ts=float("-inf") if last_ts is None else float(last_ts),
            records=int(data.get("records", 0)),
            episode=data.get("episode"),
            alert_p=float(alert[0]),
            alert_age=int(alert[1]),
            window=None if window is None else WindowState.from_json(window),
            modes=_modes(data.get("modes"), n),
            failing=[str(name) for name in data.get("failing") or ()],
        )


def _modes(data: Any, n: int) -> ModeMemory | None:
    """The saved mode memory; none (learnt again) when absent or of another layout."""
    if data is None:
        return None
    try:
        return ModeMemory.from_json(data, n)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("mode memory unusable (%s), learning the modes again", exc)
        return None


def _from_v1(data: Mapping[str, Any]) -> dict[str, Any]:
    """Version 1 kept offsets by partition only: they wait, topic-less, for `adopt`."""
    return {**data, "v": 2, "applied": {"": dict(data.get("applied", {}))}, "seen": None}


MIGRATIONS: dict[int, Callable[[Mapping[str, Any]], dict[str, Any]]] = {1: _from_v1}
"""Layout version -> the step that brings it one version up."""
