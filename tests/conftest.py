"""Session-wide test settings: say which broker lane runs, in the report header."""

from __future__ import annotations

import os

from streams.brokers import KAFKA_VERSION, TANSU_VERSION


def pytest_report_header() -> str:
    lane = os.environ.get("ANOMSTREAM_TEST_BROKER", "tansu")
    name = {"kafka": f"Apache Kafka {KAFKA_VERSION} (KRaft)", "tansu": f"Tansu {TANSU_VERSION}"}
    return f"anomstream broker lane: {name.get(lane, lane)}"
