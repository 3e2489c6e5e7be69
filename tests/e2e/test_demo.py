"""The demo's code path, end to end: every expected status, so the demo cannot rot."""

from __future__ import annotations

import email
import os
import pty
import re
import select
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from config import load_settings
from sync_worker.cli import app
from sync_worker.cli.app import ct_sync_command
from sync_worker.cli.demo import run_demo

EXPECTED = {
    "296-2185770": ("Synced", ""),
    "296-2185771": ("Synced", ""),
    "296-2185772": ("Synced", ""),
    "296-2185773": ("Synced", ""),
    "296-2185774": ("Synced", ""),
    "296-2185775": ("Data Error", "Email Address is already taken"),
    "296-2185776": ("Data Error", "Last Name has characters CrowdTwist refuses"),
    "296-2185777": ("(not sent)", ""),
    "296-2185778": ("(not sent)", ""),
    "296-2185779": ("(not sent)", ""),
}


@pytest.mark.parametrize("with_rest", [False, True], ids=["sqlite", "rest-emulator"])
def test_the_demo_ends_with_every_expected_status(tmp_path: Path, with_rest: bool) -> None:
    report = run_demo(load_settings(data_dir=tmp_path), with_rest=with_rest)
    outcomes = {row.member_number: (row.status, row.error) for row in report.rows}
    assert outcomes.keys() == EXPECTED.keys()
    for number, (status, error) in EXPECTED.items():
        assert outcomes[number][0] == status, number
        assert outcomes[number][1].startswith(error), number
    assert all(row.ct_user_id for row in report.rows if row.status == "Synced")
    # 7 creates (one per new member sent), 1 update, 1 inactive PUT answered 404, and one look-up by
    # third_party_id before the taken email is blamed on the member: nothing spent twice.
    assert report.ct_calls == {"create_user": 7, "get_user": 1, "update_user": 2}
    assert report.resubmit == (
        f"CTSYNC_DATA_DIR={tmp_path}/demo {ct_sync_command()} resubmit --member 296-2185775 --member 296-2185776"
    )


def test_the_failure_email_lists_member_numbers_and_no_personal_data(tmp_path: Path) -> None:
    report = run_demo(load_settings(data_dir=tmp_path))
    assert report.emails, "no failure email was written"
    body = "".join(
        email.message_from_bytes(path.read_bytes()).get_payload(decode=True).decode()  # type: ignore[union-attr]
        for path in report.emails
    )
    assert "296-2185775" in body
    assert "296-2185776" in body
    assert "Email Address is already taken" in body
    assert "Jane" not in body
    assert "Smith" not in body
    assert "@example.com" not in body


def test_ct_sync_demo_prints_the_table_without_log_lines_and_its_resubmit_command_works_as_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTSYNC_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "Data Error" in result.stdout
    assert "Failure email written to" in result.stdout
    assert "Segment file DemoMembers_" in result.stdout
    assert "No console: standard input is not a terminal" in result.stdout  # it never waits for an Enter
    assert result.stderr == ""  # the log went to the file the demo names
    assert f"its log in {tmp_path}/demo/demo.log" in result.stdout
    assert '"event": "worker_started"' in (tmp_path / "demo" / "demo.log").read_text()
    printed = result.stdout.split("queue them again with: ", 1)[1].splitlines()[0]
    assignment, *command = shlex.split(printed)
    variable, value = assignment.split("=", 1)
    assert command[0] == ct_sync_command()
    monkeypatch.setenv(variable, value)
    again = CliRunner().invoke(app, command[1:])
    assert again.exit_code == 0, again.output
    assert "2 member(s) queued" in again.stdout


def test_without_ct_sync_on_path_the_demo_prints_the_path_of_the_ct_sync_that_ran_it(tmp_path: Path) -> None:
    """As after `scripts/demo`: ct-sync is in .venv/bin, which PATH does not hold; the command runs as printed."""
    executable = Path(sys.executable).with_name("ct-sync")
    environment = {**os.environ, "PATH": "/usr/bin:/bin", "CTSYNC_DATA_DIR": str(tmp_path / "data")}
    demo = subprocess.run(
        [str(executable), "demo", "--no-console"], cwd=tmp_path, env=environment, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    printed = demo.stdout.split("queue them again with: ", 1)[1].splitlines()[0]
    assert printed == (
        f"CTSYNC_DATA_DIR={tmp_path}/data/demo {executable.absolute()} resubmit "
        "--member 296-2185775 --member 296-2185776"
    )
    again = subprocess.run(
        ["bash", "-c", printed], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert "2 member(s) queued" in again.stdout


def test_with_ct_sync_on_path_a_printed_command_starts_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin")
    assert ct_sync_command() == "ct-sync"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.chdir(Path(sys.executable).parent.parent.parent)  # the checkout holding .venv
    assert ct_sync_command() == f"{Path(sys.executable).parent.parent.name}/bin/ct-sync"


def test_the_demo_serves_the_console_on_its_chain_until_enter_is_pressed(tmp_path: Path) -> None:
    port = _free_port()
    environment = {**os.environ, "CTSYNC_DATA_DIR": str(tmp_path), "CTSYNC_CONSOLE__PORT": str(port)}
    controller, terminal = pty.openpty()  # a terminal, as a person running the demo has
    demo = subprocess.Popen(
        [str(Path(sys.executable).with_name("ct-sync")), "demo"],
        stdin=terminal, stdout=terminal, stderr=terminal, env=environment, close_fds=True,
    )  # fmt: skip
    os.close(terminal)
    try:
        printed = _read_until(controller, "Press Enter to stop", timeout=120)
        assert f"Console on http://127.0.0.1:{port}" in printed
        login = httpx.get(f"http://127.0.0.1:{port}/login")
        assert login.status_code == 200
        assert "Log in to the ct-sync console" in login.text
        os.write(controller, b"\n")
        assert demo.wait(timeout=60) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        os.close(controller)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _read_until(fd: int, text: str, *, timeout: float) -> str:
    """What the process printed, up to and including `text` (terminal codes and line breaks removed)."""
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the process ended and closed the terminal
                break
        plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|[\r\n]", "", seen.decode(errors="replace"))
        if text in plain:
            return plain
    raise AssertionError(f"never printed {text!r}; printed: {seen[-2000:]!r}")


def test_the_demo_ends_with_a_segment_of_the_members_crowdtwist_knows(tmp_path: Path) -> None:
    report = run_demo(load_settings(data_dir=tmp_path))
    assert report.segment is not None
    synced = sorted(row.ct_user_id for row in report.rows if row.status == "Synced")
    delivered = (tmp_path / "demo" / "sftp" / report.segment.file_name).read_text().splitlines()
    assert delivered[0] == "CTUserID"
    assert sorted(delivered[1:]) == synced
    assert report.segment.first_lines == delivered[:6]
