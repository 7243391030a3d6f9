"""A data dir belongs to one worker (static membership keys on it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import SettingsError
from streams.worker import lock_data_dir


def test_a_second_worker_on_the_same_data_dir_stops_with_one_line(tmp_path: Path) -> None:
    first = lock_data_dir(tmp_path / "data")
    try:
        with pytest.raises(SettingsError, match="another worker uses the data dir") as info:
            lock_data_dir(tmp_path / "data")
        assert "\n" not in str(info.value)
        lock_data_dir(tmp_path / "other").close()  # its own data dir: fine
    finally:
        first.close()
    lock_data_dir(tmp_path / "data").close()  # free again once the first one stopped
