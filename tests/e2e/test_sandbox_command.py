"""`ct-sync sandbox` as a real process: the CrowdTwist sandbox requires the key it is given, as CrowdTwist does; and
`ct-sync check` reaches it with the documented look-up."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from config import load_settings
from sandbox.crowdtwist import SandboxState
from sandbox.servers import SandboxServer
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.cli import app
from sync_worker.core.mapping import map_member
from sync_worker.core.member import Member
from tests.alerts.conftest import free_port
from tests.integration.helpers import eventually
from tests.integration.worker_process import CT_SYNC

KEY = "sandbox-key-4f1c9e"


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        return False
    return True


@pytest.mark.parametrize(
    ("arguments", "settings"),
    [(["--api-key", KEY], {}), ([], {"CTSYNC_CROWDTWIST__API_KEY": KEY})],
    ids=["option", "configured key"],
)
def test_the_sandbox_refuses_a_wrong_or_missing_key_with_403(
    tmp_path: Path, arguments: list[str], settings: dict[str, str]
) -> None:
    port, siebel_port, sftp_port = free_port(), free_port(), free_port()
    environment = {**os.environ, "CTSYNC_DATA_DIR": str(tmp_path), **settings}
    ports = ["--port", str(port), "--siebel-port", str(siebel_port), "--sftp-port", str(sftp_port)]
    command = [CT_SYNC, "sandbox", *ports, *arguments]
    with subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as sandbox:
        try:
            url = f"http://127.0.0.1:{port}/v2/users/296-1/"
            eventually(lambda: _answers(url), timeout=60)
            assert httpx.get(url, params={"id_type": "third_party_id"}).status_code == 403
            assert httpx.get(url, params={"id_type": "third_party_id", "api_key": "wrong"}).status_code == 403
            right = httpx.get(url, params={"id_type": "third_party_id", "api_key": KEY})
            assert right.json() == {"error": "page_not_found", "message": "User does not exist."}
        finally:
            sandbox.terminate()
            output, _ = sandbox.communicate(timeout=60)
    assert b"requires the API key of" in output
    assert KEY.encode() not in output


@pytest.mark.parametrize(("key", "exit_code"), [(KEY, 0), ("wrong-key-0123", 2)])
def test_check_reaches_a_sandbox_that_requires_its_key(
    monkeypatch: pytest.MonkeyPatch, key: str, exit_code: int
) -> None:
    with SandboxServer(SandboxState(api_key=KEY)) as sandbox:
        monkeypatch.setenv("CTSYNC_CROWDTWIST__BASE_URL", sandbox.url)
        monkeypatch.setenv("CTSYNC_CROWDTWIST__API_KEY", key)
        result = CliRunner().invoke(app, ["check"])
        assert result.exit_code == exit_code, result.output
        assert sandbox.state.stats()["calls"] == {"get_user": 1}  # the documented look-up, answered
    assert ("credentials refused" in result.output) is (exit_code != 0)


def test_faults_prints_the_switches_by_the_flags_that_set_them() -> None:
    """Not the sandbox's own names (error_rate, rate_limit_per_minute): the flags a person types next."""
    runner = CliRunner(env={"COLUMNS": "80"})
    with SandboxServer() as sandbox:
        port = str(sandbox.port)
        down = runner.invoke(app, ["sandbox", "faults", "--port", port, "--down", "--latency", "200ms"])
        limited = runner.invoke(
            app, ["sandbox", "faults", "--port", port, "--up", "--error-share", "0.1", "--rate-limit", "600"]
        )
        sandbox.state.set_faults(timeout_rate=0.2)  # a switch with no flag, set over HTTP by a test or benchmark
        cleared = runner.invoke(
            app, ["sandbox", "faults", "--port", port, "--latency", "0", "--error-share", "0", "--rate-limit", "0"]
        )
    assert down.stdout.splitlines() == [
        f"CrowdTwist sandbox on 127.0.0.1:{port}, its faults now:",
        "  --down                every call answered 503 (maintenance)",
        "  --latency 200ms       every answer this late",
        "  --error-share 0       no call answered 500",
        "  --rate-limit 0        no rate limit",
    ]
    assert limited.stdout.splitlines()[1:] == [
        "  --up                  calls answered as usual",
        "  --latency 200ms       every answer this late",
        "  --error-share 0.1     that share of calls answered 500",
        "  --rate-limit 600      calls a minute, then 429s",
    ]
    assert cleared.stdout.splitlines()[1:] == [
        "  --up                  calls answered as usual",
        "  --latency 0s          answers at once",
        "  --error-share 0       no call answered 500",
        "  --rate-limit 0        no rate limit",
        "  also set over HTTP (POST /_sandbox/faults): timeout_rate=0.2",
    ]
    for result in (down, limited, cleared):
        assert "error_rate" not in result.stdout
        assert "rate_limit_per_minute" not in result.stdout


def test_seed_fills_the_stand_in_with_members_a_share_of_them_with_data_crowdtwist_refuses(tmp_path: Path) -> None:
    runner = CliRunner(env={"CTSYNC_DATA_DIR": str(tmp_path), "CTSYNC_SIEBEL__PROGRAM_ID": "1-PRG"})
    result = runner.invoke(app, ["sandbox", "seed", "--members", "400", "--bad-share", "0.05"])
    assert result.exit_code == 0, result.output
    settings = load_settings(data_dir=tmp_path, siebel={"program_id": "1-PRG"})
    members = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel).documents()
    assert len(members) == 400
    assert {(member["Program Id"], member["Status"]) for member in members} == {("1-PRG", "Active")}
    refused = [m for m in members if not map_member(Member.model_validate(m), settings.defaults).accepted]
    first_email = next(m["Email Address"] for m in members if m["Member Number"] == "SB-0000001")
    taken = [m for m in members if m["Email Address"] == first_email and m["Member Number"] != "SB-0000001"]
    assert len(refused) + len(taken) == 20  # 5 % of 400, one defect each
    assert "seeded 400 members of program 1-PRG" in result.stdout
    again = runner.invoke(app, ["sandbox", "seed", "--members", "400", "--bad-share", "0.05"])
    assert again.exit_code == 0
    reseeded = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel).documents()
    assert [dict(m, Updated="") for m in reseeded] == [dict(m, Updated="") for m in members]  # the same members


def test_faults_switches_the_running_sandbox_and_leaves_the_others_as_they_are() -> None:
    with SandboxServer() as sandbox:
        port = str(sandbox.port)
        down = CliRunner().invoke(app, ["sandbox", "faults", "--port", port, "--down", "--latency", "200ms"])
        assert down.exit_code == 0, down.output
        assert (sandbox.state.faults.down, sandbox.state.faults.latency) == (True, 0.2)
        limited = CliRunner().invoke(
            app, ["sandbox", "faults", "--port", port, "--up", "--error-share", "0.1", "--rate-limit", "600"]
        )
        assert limited.exit_code == 0, limited.output
        faults = sandbox.state.faults
        assert (faults.down, faults.latency, faults.error_rate, faults.rate_limit_per_minute) == (False, 0.2, 0.1, 600)
    assert CliRunner().invoke(app, ["sandbox", "faults", "--port", port, "--up"]).exit_code == 75  # nobody there
