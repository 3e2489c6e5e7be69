"""Settings: sources, defaults, and one clear line for every wrong value."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from config import SettingsError, load_settings
from config.durations import format_duration, parse_duration


def test_defaults_need_no_configuration() -> None:
    settings = load_settings()
    assert settings.siebel.backend == "sqlite"
    assert settings.crowdtwist.budget_share == 0.75
    assert settings.crowdtwist.requests_per_minute == 10_000
    assert settings.broker_url.startswith("sqla+sqlite:///")
    assert settings.ledger_url.startswith("sqlite:///")


def test_nested_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTSYNC_CROWDTWIST__BASE_URL", "https://sb-api306.crowdtwist.com/")
    monkeypatch.setenv("CTSYNC_WORKER__RETRY_BUDGET", "1h30m")
    monkeypatch.setenv("CTSYNC_ALERTS__TO", "ops@example.com, admin@example.com")
    settings = load_settings()
    assert settings.crowdtwist.base_url == "https://sb-api306.crowdtwist.com"
    assert settings.worker.retry_budget == timedelta(hours=1, minutes=30)
    assert settings.alerts.to == ["ops@example.com", "admin@example.com"]


def test_environment_wins_over_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file = tmp_path / "ct-sync.toml"
    config_file.write_text('[intake]\nport = 9000\n\n[siebel]\nprogram_id = "1-PRG"\n')
    monkeypatch.setenv("CTSYNC_CONFIG", str(config_file))
    monkeypatch.setenv("CTSYNC_INTAKE__PORT", "9100")
    settings = load_settings()
    assert settings.intake.port == 9100
    assert settings.siebel.program_id == "1-PRG"


def test_api_key_is_a_secret_that_does_not_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTSYNC_CROWDTWIST__API_KEY", "k-123456789")
    settings = load_settings()
    assert settings.crowdtwist.api_key is not None
    assert settings.crowdtwist.api_key.get_secret_value() == "k-123456789"
    assert "k-123456789" not in repr(settings)
    assert "k-123456789" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CTSYNC_INTAKE__PORT", "70000", "CTSYNC_INTAKE__PORT: input should be less than or equal to 65535"),
        ("CTSYNC_INTAKE__PORT", "eighty", "CTSYNC_INTAKE__PORT: input should be a valid integer"),
        ("CTSYNC_SIEBEL__BACKEND", "oracle", "CTSYNC_SIEBEL__BACKEND: input should be 'sqlite' or 'rest'"),
        (
            "CTSYNC_CROWDTWIST__BUDGET_SHARE",
            "1.5",
            "CTSYNC_CROWDTWIST__BUDGET_SHARE: input should be less than",
        ),
        (
            "CTSYNC_CROWDTWIST__BASE_URL",
            "not a url",
            "CTSYNC_CROWDTWIST__BASE_URL: must be an http:// or https://",
        ),
        ("CTSYNC_WORKER__RETRY_BUDGET", "soon", "CTSYNC_WORKER__RETRY_BUDGET: 'soon' is not a duration"),
        (
            "CTSYNC_ALERTS__TO",
            "ops-at-example",
            "CTSYNC_ALERTS__TO: 'ops-at-example' is not an email address",
        ),
        ("CTSYNC_LEDGER__URL", "mysql://db", "CTSYNC_LEDGER__URL: must be a sqlite:/// or postgresql:// URL"),
    ],
)
def test_a_wrong_value_names_its_setting_in_one_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_rest_backend_requires_a_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTSYNC_SIEBEL__BACKEND", "rest")
    with pytest.raises(SettingsError, match=r"^CTSYNC_SIEBEL__BASE_URL: is required when backend is 'rest'$"):
        load_settings()


def test_intake_beyond_loopback_requires_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTSYNC_INTAKE__HOST", "0.0.0.0")
    with pytest.raises(SettingsError, match=r"^CTSYNC_INTAKE__TOKEN: is required when binding beyond loopback"):
        load_settings()
    monkeypatch.setenv("CTSYNC_INTAKE__TOKEN", "t0ken-value")
    assert load_settings().intake.host == "0.0.0.0"


def test_an_unknown_setting_in_the_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file = tmp_path / "ct-sync.toml"
    config_file.write_text("[worker]\nconcurency = 4\n")
    monkeypatch.setenv("CTSYNC_CONFIG", str(config_file))
    with pytest.raises(
        SettingsError,
        match=r"^CTSYNC_WORKER__CONCURENCY: is not a known setting \(did you mean CTSYNC_WORKER__CONCURRENCY\?\)$",
    ):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "nearest"),
    [
        ("CTSYNC_BROKER_URL", "CTSYNC_BROKER__URL"),
        ("CTSYNC_CROWDTWST__API_KEY", "CTSYNC_CROWDTWIST__API_KEY"),
        ("CTSYNC_LOG_LEVEL", "CTSYNC_LOG__LEVEL"),
        ("ctsync_data_dirr", "CTSYNC_DATA_DIR"),
    ],
)
def test_a_variable_that_is_no_setting_is_refused_with_the_nearest_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, nearest: str
) -> None:
    monkeypatch.setenv(variable, "amqp://rabbitmq.internal//")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == f"{variable}: is not a setting (did you mean {nearest}?)"


def test_job_tables_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTSYNC_JOBS__NIGHTLY__KIND", "poll")
    assert load_settings().jobs["nightly"].kind == "poll"


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_token_is_no_token(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CTSYNC_INTAKE__TOKEN", value)
    assert load_settings().intake.token is None
    monkeypatch.setenv("CTSYNC_INTAKE__HOST", "0.0.0.0")
    with pytest.raises(SettingsError, match=r"^CTSYNC_INTAKE__TOKEN: is required when binding beyond loopback"):
        load_settings()


@pytest.mark.parametrize("url", ["https://sb-api306.crowdtwist.com/v2", "https://sb-api306.crowdtwist.com/v2.1/"])
def test_a_crowdtwist_base_url_with_a_version_is_refused(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("CTSYNC_CROWDTWIST__BASE_URL", url)
    with pytest.raises(SettingsError, match=r"^CTSYNC_CROWDTWIST__BASE_URL: must be the host root, without a version"):
        load_settings()


def test_the_log_format_and_level_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTSYNC_LOG__LEVEL", "warning")
    monkeypatch.setenv("CTSYNC_LOG__FORMAT", "json")
    log = load_settings().log
    assert (log.level, log.format) == ("WARNING", "json")


def test_a_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTSYNC_CONFIG", "/nonexistent/ct-sync.toml")
    with pytest.raises(SettingsError, match=r"^CTSYNC_CONFIG: no such file: /nonexistent/ct-sync.toml$"):
        load_settings()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("1h30m", 5400), ("7d", 604800), ("250ms", 0.25), ("45", 45), (" 2h ", 7200)],
)
def test_durations_parse_as_operators_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "m10", "10 minutes", "1h-5m", "ten"])
def test_durations_refuse_what_they_do_not_understand(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_durations_format_back_to_their_short_form() -> None:
    assert format_duration(timedelta(hours=1, minutes=30)) == "1h30m"
    assert format_duration(timedelta(milliseconds=250)) == "250ms"
