"""The Faust app is configured by anomstream's settings alone (unit tier: built, not started)."""

from __future__ import annotations

from pathlib import Path

import pytest
from faust.types.enums import ProcessingGuarantee

from streams.app import build_app
from streams.metrics import Metrics
from streams.settings import load_settings
from streams.topics import TopicPlan

TOPICS = TopicPlan("signals", "scores", "anomalies", "signals.dlq", "cl", 4, 1)


def test_faust_ignores_its_own_unprefixed_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Faust reads BROKER_URL, PROCESSING_GUARANTEE, ... from os.environ and lets them win over
    # what the app passes: a stray variable on a host would reconfigure the worker in silence.
    monkeypatch.setenv("BROKER_URL", "kafka://elsewhere:1")
    monkeypatch.setenv("PROCESSING_GUARANTEE", "exactly_once")
    monkeypatch.setenv("PRODUCER_ACKS", "0")
    monkeypatch.setenv("APP_DATADIR", str(tmp_path / "faust-datadir"))
    settings = load_settings(
        environ={}, broker="kafka://mine:9092", data_dir=tmp_path, models_dir=tmp_path
    )
    app = build_app(settings, TOPICS, Metrics())
    assert [str(u) for u in app.conf.broker] == ["kafka://mine:9092"]
    guarantee: object = app.conf.processing_guarantee  # typed as the enum class in Faust
    assert guarantee is ProcessingGuarantee.AT_LEAST_ONCE
    assert app.conf.producer_acks == -1
    assert Path(app.conf.datadir) == tmp_path
