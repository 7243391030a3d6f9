"""Local time for calendar rhythms: offsets follow the zone's rules, DST included."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from detectors.clock import LocalClock


def test_offsets_follow_daylight_saving_time() -> None:
    clock = LocalClock("Europe/Berlin")
    # 2026-03-29 01:00 UTC: clocks go from 02:00 CET to 03:00 CEST
    change = datetime(2026, 3, 29, 1, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    t = np.array([change - 60.0, change, change + 3600.0, np.nan])
    shifted = clock.local(t) - t
    assert shifted[:3].tolist() == [3600.0, 7200.0, 7200.0]
    assert np.isnan(shifted[3])


def test_utc_is_the_identity_and_unknown_zones_fail_early() -> None:
    t = np.array([0.0, 1.7e9])
    assert LocalClock().local(t) is t
    with pytest.raises(Exception, match="Nowhere"):
        LocalClock("Nowhere/Special")
