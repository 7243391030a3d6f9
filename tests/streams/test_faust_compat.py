"""The Faust workarounds are tied to the release they were checked on."""

from __future__ import annotations

from importlib.metadata import version

from streams.faust_compat import FAUST_VERSION


def test_the_installed_faust_is_the_one_the_workarounds_were_written_for() -> None:
    # A new faust-streaming may rename or fix what streams/faust_compat.py relies on: re-check
    # each workaround there, then move FAUST_VERSION and the pin in pyproject.toml together.
    assert version("faust-streaming") == FAUST_VERSION
