"""The `ct-sync` command line: every command registered, design.md exit codes."""

from __future__ import annotations

import io
import re

import pytest
import structlog
import typer
from rich.console import Console
from structlog.testing import capture_logs
from typer.testing import CliRunner

from sync_worker.cli import app, progress
from sync_worker.cli.app import or_exit
from sync_worker.cli.sync import retry_transient
from sync_worker.core.errors import ConfigurationError, TransientError

COMMANDS = [
    "demo",
    "worker",
    "intake",
    "poll",
    "publish",
    "resubmit",
    "status",
    "preview",
    "check",
    "sandbox",
    "scheduler",
    "jobs",
]
runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_check_with_a_bad_setting_prints_one_line_and_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTSYNC_INTAKE__PORT", "70000")
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "ct-sync: configuration error: CTSYNC_INTAKE__PORT: input should be less than or equal to 65535 (got '70000')"
    ]


def test_an_unknown_command_is_a_usage_error() -> None:
    result = runner.invoke(app, ["frobnicate"])
    assert result.exit_code == 2


def test_poll_every_tries_again_after_a_siebel_blip_with_growing_waits_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    blips = [TransientError("Siebel unavailable: HTTP 503", system="siebel") for _ in range(2)]
    waits: list[float] = []

    def one_pass() -> str:
        if blips:
            raise blips.pop()
        return "published"

    assert retry_transient(one_pass, longest_wait=300, sleep=waits.append) == "published"
    assert 5 <= waits[0] < 10 <= waits[1] < 20
    said = capsys.readouterr().err
    assert re.search(r"ct-sync poll: Siebel unavailable: HTTP 503; trying again in \d+ s \(attempt 2\)", said)
    assert "(attempt 3)" in said


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            TransientError("Siebel unreachable at http://s.example/siebel/v1.0: ConnectError", system="siebel"),
            "ct-sync: Siebel unreachable at http://s.example/siebel/v1.0: ConnectError",
        ),
        (
            TransientError("ledger unavailable: database is locked", system="ledger"),
            "ct-sync: ledger unavailable: database is locked",
        ),
        (
            TransientError("HTTP 502: Bad Gateway", system="crowdtwist"),
            "ct-sync: crowdtwist unreachable: HTTP 502: Bad Gateway",
        ),
    ],
)
def test_an_outage_is_named_once_in_one_line(
    error: TransientError, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing() -> None:
        raise error

    with pytest.raises(typer.Exit) as exited:
        or_exit(failing)
    assert exited.value.exit_code == 75
    assert capsys.readouterr().err == line + "\n"


def test_poll_every_gives_up_on_a_configuration_problem() -> None:
    def refused() -> str:
        raise ConfigurationError("Siebel refused the credentials (HTTP 401)", system="siebel")

    with pytest.raises(ConfigurationError):
        retry_transient(refused, longest_wait=300, sleep=lambda seconds: None)


def test_without_a_terminal_progress_is_a_log_line_every_few_seconds_with_rate_and_eta(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    with capture_logs() as lines:
        # A logger of the capture's own: one an earlier test used may be cached with the real configuration.
        monkeypatch.setattr(progress, "log", structlog.get_logger("ct_sync.cli"))
        with progress.progress(
            Console(file=io.StringIO()), "reading", unit="members", event="poll_progress"
        ) as advance:
            for seconds, done in ((1, 100), (3, 300), (6, 600), (8, 800), (12, 1200)):
                now[0] = 1000.0 + seconds
                advance(done, 3000)
    assert [(line["done"], line["per_second"], line["eta_seconds"]) for line in lines] == [
        (600, 100.0, 24),
        (1200, 100.0, 18),
    ]
    assert {line["event"] for line in lines} == {"poll_progress"}
