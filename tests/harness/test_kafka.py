"""harness.kafka without starting a JVM: the server.properties, heap sizes and cluster ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import kafka
from harness.kafka import KafkaBroker


def test_properties_name_both_listeners_and_extra_ones_win(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path, 19092, controller_port=19093, properties={"num.partitions": 4})
    props = broker.properties()
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["num.partitions"] == "4"
    assert props["log.dirs"] == str(broker.data_dir)


def test_megabytes() -> None:
    assert [kafka._megabytes(s) for s in ("512m", "1g", "2048k", "1G")] == [512, 1024, 2, 1024]
    with pytest.raises(ValueError, match="heap"):
        kafka._megabytes("lots")


def test_cluster_ids_never_look_like_an_option() -> None:
    ids = {kafka._kafka_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
