"""What an operator reads: log lines in the format asked for, no terminal codes from uvicorn, a start line naming
each system without a secret, and a port already taken as one line naming its setting (exit 2)."""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from config import load_settings
from config.logging import configure_logging
from sync_worker.bootstrap import describe_systems
from sync_worker.cli import app
from sync_worker.http import BackgroundServer, health_app

pytestmark = pytest.mark.usefixtures("restore_logging")

runner = CliRunner()


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.mark.parametrize(
    ("command", "setting"),
    [("intake", "CTSYNC_INTAKE__PORT"), ("worker", "CTSYNC_METRICS__PORT")],
)
def test_a_port_already_in_use_is_one_line_naming_its_setting_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, taken_port: int, command: str, setting: str
) -> None:
    monkeypatch.setenv(setting, str(taken_port))
    result = runner.invoke(app, ["--log-level", "ERROR", command])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"ct-sync: {setting}: 127.0.0.1:{taken_port} is already in use by another process"
    ]


def test_the_log_format_follows_its_setting_unless_an_option_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTSYNC_LOG__FORMAT", "console")
    console = runner.invoke(app, ["poll"])  # an empty stand-in: one `poll_finished` line
    assert console.exit_code == 0, console.output
    line = next(line for line in console.stderr.splitlines() if "poll_finished" in line)
    assert not line.startswith("{")
    forced = runner.invoke(app, ["--log-json", "poll"])
    record = json.loads(next(line for line in forced.stderr.splitlines() if "poll_finished" in line))
    assert record["event"] == "poll_finished"


def test_uvicorn_leaves_no_colour_codes_and_no_press_ctrl_c_in_the_log() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", json=False, stream=stream)
    with BackgroundServer(health_app(registry=None, readiness=dict)):
        pass
    logging.getLogger("uvicorn.error").warning("Invalid request", extra={"color_message": "\x1b[1mInvalid\x1b[0m"})
    output = stream.getvalue()
    assert "Invalid request" in output
    assert "\x1b[" not in output
    assert "CTRL+C" not in output


def test_the_start_line_names_each_system_by_host_and_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTSYNC_BROKER__URL", "amqp://ct-sync:rabbit-pw-1@rabbitmq.internal:5672/ct-sync")
    monkeypatch.setenv("CTSYNC_LEDGER__URL", "postgresql://ct-sync:db-pw-2@db.internal/ct_sync")
    monkeypatch.setenv("CTSYNC_SIEBEL__BACKEND", "rest")
    monkeypatch.setenv("CTSYNC_SIEBEL__BASE_URL", "https://siebel.internal/siebel/v1.0")
    monkeypatch.setenv("CTSYNC_SIEBEL__PASSWORD", "siebel-pw-3")
    monkeypatch.setenv("CTSYNC_CROWDTWIST__BASE_URL", "https://sb-api306.crowdtwist.com")
    monkeypatch.setenv("CTSYNC_CROWDTWIST__API_KEY", "ct-key-4")
    monkeypatch.setenv("CTSYNC_ALERTS__SMTP_HOST", "smtp.example.com")
    systems = describe_systems(load_settings())
    assert systems == {
        "broker": "amqp://rabbitmq.internal:5672/ct-sync",
        "siebel": "https://siebel.internal/siebel/v1.0",
        "crowdtwist": "https://sb-api306.crowdtwist.com",
        "ledger": "postgresql://db.internal/ct_sync",
        "alerts": "SMTP smtp.example.com:25",
    }
