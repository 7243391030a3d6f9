from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import SettingsError, load_settings


def test_defaults_match_the_design() -> None:
    s = load_settings(environ={})
    assert s.kafka.broker == "kafka://localhost:9092"
    assert (
        s.kafka.topic_signals,
        s.kafka.topic_scores,
        s.kafka.topic_anomalies,
        s.kafka.topic_dlq,
    ) == (
        "signals",
        "scores",
        "anomalies",
        "signals.dlq",
    )
    assert (
        s.kafka.partitions == 4 and s.kafka.producer_idempotence and s.serving.metrics_port == 9464
    )
    assert s.scoring.target_fap == 1e-3 and s.scoring.threshold == pytest.approx(0.999)


def test_env_beats_file_and_overrides_beat_env(tmp_path: Path) -> None:
    cfg = tmp_path / "a.toml"
    cfg.write_text('broker = "filehost:1"\napp_id = "from-file"\npartitions = 8\n')
    s = load_settings(
        cfg, environ={"ANOMSTREAM_BROKER": "envhost:2", "ANOMSTREAM_PRODUCER_IDEMPOTENCE": "false"}
    )
    assert (
        s.kafka.broker == "kafka://envhost:2"
        and s.kafka.app_id == "from-file"
        and s.kafka.partitions == 8
    )
    assert s.kafka.producer_idempotence is False
    s = load_settings(cfg, environ={"ANOMSTREAM_BROKER": "envhost:2"}, broker="cli:3")
    assert s.kafka.bootstrap_servers == "cli:3"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ANOMSTREAM_PARTITIONS": "zero"}, "partitions"),
        ({"ANOMSTREAM_TARGET_FAP": "2"}, "target_fap"),
        ({"ANOMSTREAM_BROKER": "no-port"}, "broker"),
        ({"ANOMSTREAM_TIMEZONE": "Mars/Olympus"}, "timezone"),
        ({"ANOMSTREAM_SEASONAL_PERIODS": "day,month"}, "seasonal_periods"),
        ({"ANOMSTREAM_SEASONAL_BINS": "1"}, "seasonal_bins"),
        ({"ANOMSTREAM_KNOWN_FACTOR": "0.5"}, "known_factor"),
    ],
)
def test_bad_values_give_one_line_naming_the_setting(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ=environ)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_config_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "missing.toml", environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("broker = [")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(bad, environ={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("brokr = 'x:1'")
    with pytest.raises(SettingsError, match="unknown setting"):
        load_settings(unknown, environ={})


def test_seasonal_settings_reach_the_scorer() -> None:
    from streams.scoring import build_scorer

    s = load_settings(
        environ={
            "ANOMSTREAM_TIMEZONE": "Europe/Berlin",
            "ANOMSTREAM_SEASONAL_PERIODS": "day, week",
            "ANOMSTREAM_SEASONAL_BINS": "24",
            "ANOMSTREAM_SEASONAL_SIGNALS": "temp*,!temp_raw",
        }
    )
    seasonal = {d.kind: d for d in build_scorer(s).suite}["seasonal"]
    assert seasonal.clock.zone == "Europe/Berlin"  # type: ignore[attr-defined]
    assert seasonal.periods == ("day", "week")  # type: ignore[attr-defined]
    assert seasonal.bins == 24  # type: ignore[attr-defined]
    assert seasonal.signals == ("temp*", "!temp_raw")  # type: ignore[attr-defined]
    off = load_settings(environ={"ANOMSTREAM_SEASONAL_PERIODS": ""})
    assert "seasonal" not in {d.kind for d in build_scorer(off).suite}


def test_alerting_settings_reach_the_scorer() -> None:
    from streams.scoring import build_scorer

    s = load_settings(environ={"ANOMSTREAM_KNOWN_FACTOR": "3", "ANOMSTREAM_REALERT_AFTER": "50"})
    config = build_scorer(s).config
    assert config.known_factor == 3.0 and config.realert_after == 50
    assert build_scorer(load_settings(environ={})).config.known_factor == 10.0


def test_episode_settings_name_the_topic_and_the_gap() -> None:
    from detectors.episodes import EPISODE_GAP
    from streams.topics import TopicPlan

    default = load_settings(environ={})
    assert default.scoring.episode_gap == EPISODE_GAP
    assert TopicPlan.from_settings(default).episodes == "episodes"
    s = load_settings(environ={"ANOMSTREAM_EPISODE_GAP": "0", "ANOMSTREAM_TOPIC_EPISODES": ""})
    assert s.scoring.episode_gap == 0 and TopicPlan.from_settings(s).episodes == ""
    with pytest.raises(SettingsError, match="episode_gap"):
        load_settings(environ={"ANOMSTREAM_EPISODE_GAP": "-1"})


def test_the_episode_gap_reaches_the_scorer() -> None:
    from detectors.episodes import gap_of
    from streams.scoring import build_scorer

    config = build_scorer(load_settings(environ={"ANOMSTREAM_EPISODE_GAP": "0"})).config
    assert gap_of(config) == 0


def test_the_file_may_group_settings_in_tables(tmp_path: Path) -> None:
    cfg = tmp_path / "a.toml"
    cfg.write_text('[anomstream.kafka]\ntopic_scores = "s2"\n[anomstream.scoring]\nwarmup = 50\n')
    s = load_settings(cfg, environ={})
    assert s.kafka.topic_scores == "s2" and s.scoring.warmup == 50
    cfg.write_text("[anomstream.kafka]\nwarmup = 50\n")  # a real name, in the wrong group
    with pytest.raises(SettingsError, match=r"unknown setting kafka\.warmup"):
        load_settings(cfg, environ={})


def test_library_defaults_are_the_settings_defaults() -> None:
    from detectors.engine import ScoringConfig
    from detectors.registry import SuiteOptions
    from streams.codec import Limits

    s = load_settings(environ={})
    assert s.scoring.config() == ScoringConfig()
    assert s.limits.limits() == Limits()
    defaults, built = SuiteOptions(), s.seasonal.options()
    assert (built.periods, built.bins, built.signals) == (
        defaults.periods,
        defaults.bins,
        defaults.signals,
    )
    assert built.clock.zone == defaults.clock.zone
    assert set(s.names()) >= {"broker", "target_fap", "timezone", "max_signals", "source_ttl"}


def test_mistyped_variables_are_named_with_a_suggestion() -> None:
    from streams.settings import stray_variables

    env = {
        "ANOMSTREAM_TOPIC_SCORE": "x",
        "ANOMSTREAM_BROKER": "h:1",
        "ANOMSTREAM_CONFIG": "a.toml",
        "ANOMSTREAM_TEST_BROKER": "kafka",
        "ANOMSTREAM_WHATEVER": "1",
        "ANOMSTREAM_API_PORT": "8000",  # the HTTP API's own settings check these
        "PATH": "/bin",
    }
    found = stray_variables(env)
    assert found == [
        "ANOMSTREAM_TOPIC_SCORE is not a setting (did you mean ANOMSTREAM_TOPIC_SCORES?)",
        "ANOMSTREAM_WHATEVER is not a setting",
    ]
