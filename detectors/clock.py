"""Local wall-clock time for calendar rhythms: people and plants keep local time, DST included.

A daily load curve follows the wall clock, so after a daylight-saving change its peak moves by an
hour in UTC. The seasonal profile is indexed by local time instead; `LocalClock` turns epoch
seconds into "local epoch seconds" (UTC plus the zone's offset at that instant), vectorised with a
cache of offsets per quarter hour (every zone changes its offset on a quarter-hour boundary).

>>> clock = LocalClock("Europe/Berlin")
>>> import numpy as np
>>> (clock.local(np.array([1_700_000_000.0])) - 1_700_000_000.0).tolist()  # CET: UTC+1
[3600.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

QUARTER = 900.0


@dataclass(frozen=True)
class LocalClock:
    """Local time of one IANA zone (`UTC` by default: no offsets, no work)."""

    zone: str = "UTC"
    _offsets: dict[int, float] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        ZoneInfo(self.zone)  # fails early on an unknown zone

    def _offset(self, quarter: int) -> float:
        got = self._offsets.get(quarter)
        if got is None:
            instant = datetime.fromtimestamp(quarter * QUARTER, tz=UTC)
            delta = instant.astimezone(ZoneInfo(self.zone)).utcoffset()
            got = self._offsets[quarter] = 0.0 if delta is None else delta.total_seconds()
        return got

    def local(self, t: np.ndarray) -> np.ndarray:
        """Epoch seconds shifted by the zone's UTC offset at each instant (NaN stays NaN)."""
        if self.zone == "UTC":
            return t
        finite = np.isfinite(t)
        quarters = np.floor(np.where(finite, t, 0.0) / QUARTER).astype(np.int64)
        unique, inverse = np.unique(quarters, return_inverse=True)
        offsets = np.array([self._offset(int(q)) for q in unique])
        out: np.ndarray = t + offsets[inverse].reshape(t.shape)
        return out
