"""harness.kafka_dist without Maven: the cache root, Java checks, mvn's error line, the bridge."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import kafka_dist


def test_cache_root_follows_the_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kafka_dist.CACHE_ENV, str(tmp_path))
    assert kafka_dist.cache_root() == tmp_path
    monkeypatch.delenv(kafka_dist.CACHE_ENV)
    assert kafka_dist.cache_root() == Path.home() / ".cache" / "anomstream"


def test_java_problem_without_java() -> None:
    assert kafka_dist.java_problem(None) == "java not found on PATH (Apache Kafka needs Java >= 17)"


def test_mvn_error_is_the_first_error_line() -> None:
    out = "[INFO] x\n\x1b[1;31m[ERROR]\x1b[m Failed to resolve\n[ERROR] more\n"
    assert kafka_dist._mvn_error(out) == "Failed to resolve"
    assert kafka_dist._mvn_error("a\nlast\n\n") == "last"
    assert kafka_dist._mvn_error("") == "no output"


@pytest.mark.parametrize(
    ("jars", "expected"),
    [
        (
            ["log4j-core-2.24.3.jar", "slf4j-api-2.0.16.jar"],
            "org.apache.logging.log4j:log4j-slf4j2-impl:2.24.3",
        ),
        (
            ["log4j-core-2.17.1.jar", "slf4j-api-1.7.36.jar"],
            "org.apache.logging.log4j:log4j-slf4j-impl:2.17.1",
        ),
        (["log4j-core-2.24.3.jar", "slf4j-api-2.0.16.jar", "log4j-slf4j2-impl-2.24.3.jar"], None),
        (["slf4j-api-2.0.16.jar"], None),
    ],
)
def test_slf4j_binding(tmp_path: Path, jars: list[str], expected: str | None) -> None:
    for jar in jars:
        (tmp_path / jar).write_bytes(b"")
    assert kafka_dist._slf4j_binding(tmp_path) == expected
