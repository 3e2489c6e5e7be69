"""The `ct-sync` command line: every command registered, design.md exit codes."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sync_worker.cli import app

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
