"""The worker's path without Kafka runs end to end on the throughput workload and reports."""

from __future__ import annotations

import asyncio
import re

import pytest

from bench import hotpath


def test_hotpath_scores_every_record_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(hotpath.run(records=1000, per_message=10, batch_records=500, warm=1000))
    out = capsys.readouterr().out
    assert "10 per message, batches of 500, scores full: 1000 records" in out
    assert "µs CPU per record" in out
    # every stage is reported, and they add up to about the total
    stages = dict(re.findall(r"^\s+([a-z ]+?)\s+([\d.]+) µs per record$", out, re.M))
    assert {"decode", "detectors", "messages", "state save"} <= set(stages)
    total = float(re.search(r"([\d.]+) µs CPU per record", out).group(1))  # type: ignore[union-attr]
    assert sum(map(float, stages.values())) == pytest.approx(total, rel=0.25)
