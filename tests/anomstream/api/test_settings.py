"""The API's settings: env and flags, one-line errors, the sensitivity mapping, the docs."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from anomstream.api.settings import (
    ENV_PREFIX,
    ApiSettings,
    ApiSettingsError,
    is_loopback,
    load_api_settings,
    sensitivity_fap,
    stray_variables,
)

API_DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMSTREAM_API_PORT", "9001")
    monkeypatch.setenv("ANOMSTREAM_API_MAX_ROWS", "50")
    settings = load_api_settings(port=9002, max_rows=None)
    assert settings.port == 9002  # the flag
    assert settings.max_rows == 50  # the environment, where no flag was given
    assert settings.host == "127.0.0.1"  # the default


def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMSTREAM_API_WORKERS", "none")
    with pytest.raises(ApiSettingsError, match=r"^ANOMSTREAM_API_WORKERS: .*integer"):
        load_api_settings()


def test_a_bad_flag_is_named_as_the_flag() -> None:
    with pytest.raises(ApiSettingsError, match=r"^max_rows: .*greater than or equal to 1"):
        load_api_settings(max_rows=0)


def test_a_misspelt_variable_stops_with_the_closest_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMSTREAM_API_MAX_ROW", "5")
    with pytest.raises(ApiSettingsError, match="did you mean ANOMSTREAM_API_MAX_ROWS"):
        load_api_settings()
    assert stray_variables({"ANOMSTREAM_API_PORT": "1", "ANOMSTREAM_BROKER": "x"}) == []


def test_sensitivity_maps_log_linearly_onto_target_fap() -> None:
    assert sensitivity_fap(0.0) == pytest.approx(1e-9)
    assert sensitivity_fap(0.75) == pytest.approx(1e-3)  # the default target_fap
    assert sensitivity_fap(1.0) == pytest.approx(0.1)
    steps = [sensitivity_fap(s / 8) for s in range(9)]
    assert all(b == pytest.approx(10 * a) for a, b in itertools.pairwise(steps))
    with pytest.raises(ValueError, match=r"0\.\.1"):
        sensitivity_fap(1.5)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.4", False),
        ("example.org", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_every_setting_is_documented_in_full() -> None:
    page = API_DOC.read_text(encoding="utf-8")
    missing = [
        ENV_PREFIX + name.upper()
        for name in ApiSettings.model_fields
        if not re.search(rf"\b{ENV_PREFIX}{name.upper()}\b", page)
    ]
    assert not missing, f"document these in docs/api.md: {missing}"
    documented = set(re.findall(rf"{ENV_PREFIX}[A-Z][A-Z0-9_]*", page))
    known = {ENV_PREFIX + name.upper() for name in ApiSettings.model_fields}
    assert documented <= known, f"documented but no setting: {sorted(documented - known)}"
