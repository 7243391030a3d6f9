"""An API app per test on its own data directory, and records to send it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from anomstream.api.app import create_app
from anomstream.api.settings import ApiSettings

START = 1_795_514_400


def series(
    n: int, source: str = "pump-1", seed: int = 0, spike_at: int | None = None
) -> list[dict[str, Any]]:
    """`n` records of two noisy signals, one a second; `spike_at`: temp jumps there."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        temp = 60.0 + rng.normal()
        if i == spike_at:
            temp += 40.0
        out.append(
            {
                "source": source,
                "ts": START + i,
                "signals": {"temp": round(temp, 6), "flow": round(3.0 + 0.1 * rng.normal(), 6)},
            }
        )
    return out


@pytest.fixture
def settings(tmp_path: Path) -> ApiSettings:
    return ApiSettings(data_dir=tmp_path / "api", models_dir=tmp_path / "models")


@pytest.fixture
def client(settings: ApiSettings) -> Iterator[TestClient]:
    """The app with its lifespan (the job pool runs)."""
    with TestClient(create_app(settings, prepare=False)) as running:
        yield running


@pytest.fixture
def idle(settings: ApiSettings) -> TestClient:
    """The app without its lifespan: jobs are accepted and stay QUEUED (no process runs)."""
    return TestClient(create_app(settings, prepare=False))


def wait_for(client: TestClient, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll the job until it ends; its last view."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] not in {"QUEUED", "RUNNING"} or time.monotonic() > deadline:
            return job
        time.sleep(0.2)
