"""The Faust app is configured by anomstream's settings alone (unit tier: built, not started)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

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


def test_the_changelog_producer_takes_the_largest_state(tmp_path: Path) -> None:
    from streams.topics import CHANGELOG_MAX_MESSAGE_BYTES

    settings = load_settings(environ={}, data_dir=tmp_path, models_dir=tmp_path)
    app = build_app(settings, TOPICS, Metrics())
    assert app.conf.producer_max_request_size == CHANGELOG_MAX_MESSAGE_BYTES


def test_static_group_membership_by_default_stable_per_host_and_data_dir(tmp_path: Path) -> None:
    import socket

    from streams.app import group_instance_id

    one = load_settings(environ={}, data_dir=tmp_path / "a", models_dir=tmp_path)
    again = load_settings(environ={}, data_dir=tmp_path / "a", models_dir=tmp_path)
    other = load_settings(environ={}, data_dir=tmp_path / "b", models_dir=tmp_path)
    member = group_instance_id(one)
    assert member is not None and member.startswith(f"{socket.gethostname()}-anomstream-")
    assert member == group_instance_id(again) != group_instance_id(other)
    assert build_app(one, TOPICS, Metrics()).conf.consumer_group_instance_id == member
    named = load_settings(environ={"ANOMSTREAM_GROUP_INSTANCE_ID": "pump-worker-0"})
    assert group_instance_id(named) == "pump-worker-0"
    assert group_instance_id(load_settings(environ={"ANOMSTREAM_GROUP_INSTANCE_ID": ""})) is None


class _Data(dict):  # type: ignore[type-arg]
    """Faust's memory store: a dict, with the partition of every key it restored."""

    _key_partition: dict[bytes, int]


class _Table:
    def __init__(self) -> None:
        self.data = _Data()
        self.data._key_partition = {b"restored-on-2": 2, b"restored-on-1": 1}
        self.data.update({b"restored-on-2": b"{}", b"restored-on-1": b"{}"})
        self.sent: list[tuple[int, bytes, bytes | None]] = []

    def send_changelog(self, partition: int, key: bytes, value: bytes | None, **kw: Any) -> Any:
        self.sent.append((partition, key, value))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


def test_revoked_partitions_sources_are_saved_then_forgotten_without_tombstones(
    tmp_path: Path,
) -> None:
    from detectors.records import Origin, Record
    from streams.app import keep_partitions
    from streams.faust_compat import TableStore
    from streams.scoring import build_scorer
    from streams.state import SourceStates

    settings = load_settings(environ={}, data_dir=tmp_path, models_dir=tmp_path)
    table = _Table()
    store = TableStore(table)
    states = SourceStates(build_scorer(settings), store, Metrics(), flush_interval=60)

    async def run() -> int:
        records = [
            Record(name, 1795514400.0, "t", {"a": 1.0}, origin=Origin("signals", p, 0))
            for name, p in (("stays", 0), ("moves", 2))
        ]
        loaded, _ = states.load(records)
        states.scorer.score_batch(records, loaded)
        states.changed(records)
        return await keep_partitions(states, store, {0, 1, 3})

    assert asyncio.run(run()) == 2  # "moves" and the restored entry of partition 2
    assert sorted(store.keys()) == [b"restored-on-1", b"stays"]
    assert (2, b"moves") in [(p, k) for p, k, v in table.sent if v is not None]  # saved first
    assert all(v is not None for _, _, v in table.sent)  # no tombstone
    assert set(states._seen) == {"stays"} and not states.dirty
