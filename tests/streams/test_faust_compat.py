"""The Faust workarounds are tied to the release they were checked on."""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from types import SimpleNamespace
from typing import Any

from streams.faust_compat import FAUST_VERSION, RecoveryWatch


def test_the_installed_faust_is_the_one_the_workarounds_were_written_for() -> None:
    # A new faust-streaming may rename or fix what streams/faust_compat.py relies on: re-check
    # each workaround there, then move FAUST_VERSION and the pin in pyproject.toml together.
    assert version("faust-streaming") == FAUST_VERSION


def test_a_changelog_partition_whose_recovery_stands_still_is_read_again() -> None:
    sought: list[dict[str, int]] = []

    async def seek_wait(offsets: dict[str, int]) -> None:
        sought.append(dict(offsets))

    recovery = SimpleNamespace(
        in_recovery=True,
        active_tps={"cl-0", "cl-1"},
        active_offsets={"cl-0": 4, "cl-1": 9},
        active_highwaters={"cl-0": 10, "cl-1": 9},  # cl-1 is recovered already
    )
    now = [0.0]
    app: Any = SimpleNamespace(
        tables=SimpleNamespace(recovery=recovery), consumer=SimpleNamespace(seek_wait=seek_wait)
    )
    watch = RecoveryWatch(app, stall=20.0, clock=lambda: now[0])
    assert asyncio.run(watch.look()) == []
    now[0] = 10.0
    recovery.active_offsets["cl-0"] = 6  # moving: left alone
    assert asyncio.run(watch.look()) == []
    now[0] = 29.0
    assert asyncio.run(watch.look()) == [] and sought == []
    now[0] = 31.0  # 21 s without a record applied
    assert asyncio.run(watch.look()) == ["cl-0"] and sought == [{"cl-0": 7}]
    recovery.in_recovery = False
    now[0] = 100.0
    assert asyncio.run(watch.look()) == [] and len(sought) == 1
