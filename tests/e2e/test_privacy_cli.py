"""`ct-sync privacy …` against the CrowdTwist sandbox over real HTTP: the first line, the JSON document and its
owner-only file, a deletion followed to completion with `--wait`, the refusal verbatim, restore, and no resurrection
by resubmit; the key and the member's data never in a log line or the ledger file."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from config import load_settings
from sandbox.crowdtwist import SandboxState
from sandbox.servers import SandboxServer
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.cli import app
from tests.builders import PROGRAM, siebel_member

API_KEY = "e2e-privacy-key-0123456789abcdef"
EMAIL = "marguerite.privacy@example.com"
runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxState(api_key=API_KEY)) as server:
        yield server


@pytest.fixture
def crowdtwist(sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    sandbox.state.reset()
    sandbox.state.set_rules(deletion_step_seconds=0.05)
    monkeypatch.setenv("CTSYNC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CTSYNC_CROWDTWIST__BASE_URL", sandbox.url)
    monkeypatch.setenv("CTSYNC_CROWDTWIST__API_KEY", API_KEY)
    monkeypatch.setenv("CTSYNC_PRIVACY__POLL_INTERVAL", "20ms")
    monkeypatch.setenv("CTSYNC_SIEBEL__PROGRAM_ID", PROGRAM)
    user = {"third_party_id": "296-1", "first_name": "Marguerite", "last_name": "Privacy", "email_address": EMAIL}
    with httpx.Client(base_url=sandbox.url, params={"api_key": API_KEY}) as http:
        http.post("/v2/users", json=user).raise_for_status()
        yield http


def test_access_writes_one_json_document_to_stdout_and_the_summary_to_stderr(crowdtwist: httpx.Client) -> None:
    result = runner.invoke(app, ["privacy", "access", "--email", EMAIL, "--reference", "T-1"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["profile"]["email_address"] == EMAIL
    assert document["third_party_id"] == "296-1"
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"privacy request {document['privacy_request']}: access to member 296-1")
    assert "activity_history: 0" in result.stderr


def test_access_out_file_is_created_owner_only(crowdtwist: httpx.Client, tmp_path: Path) -> None:
    out = tmp_path / "export.json"
    result = runner.invoke(app, ["privacy", "access", "--member", "296-1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("privacy request PR-1: access to member 296-1")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text())["profile"]["third_party_id"] == "296-1"
    again = runner.invoke(app, ["privacy", "access", "--member", "296-1", "--out", str(out)])
    assert again.exit_code == 2  # never over an existing file


def test_access_to_an_unknown_member_exits_1(crowdtwist: httpx.Client) -> None:
    result = runner.invoke(app, ["privacy", "access", "--member", "296-404"])
    assert result.exit_code == 1
    assert "privacy request PR-1: no CrowdTwist user for member 296-404" in result.stderr


def test_delete_wait_follows_the_deletion_to_completion(crowdtwist: httpx.Client) -> None:
    result = runner.invoke(app, ["privacy", "delete", "--member", "296-1", "--wait", "--reference", "T-2"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("privacy request PR-1: deletion of member 296-1 (CrowdTwist user ")
    assert lines[0].endswith(": Queued")
    assert lines[-1].endswith(": Deletion_completed")
    assert crowdtwist.get("/v2/users/296-1/", params={"id_type": "third_party_id"}).status_code == 404
    status = runner.invoke(app, ["privacy", "status", "PR-1", "--json"])
    assert json.loads(status.stdout)[0]["status"] == "Deletion_completed"
    assert json.loads(status.stdout)[0]["reference"] == "T-2"


def test_status_without_an_id_follows_every_open_deletion(crowdtwist: httpx.Client, sandbox: SandboxServer) -> None:
    sandbox.state.set_rules(deletion_step_seconds=3600)
    assert runner.invoke(app, ["privacy", "delete", "--member", "296-1"]).exit_code == 0
    sandbox.state.advance(3 * 3600)
    result = runner.invoke(app, ["privacy", "status"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(": Deletion_completed")
    assert runner.invoke(app, ["privacy", "status"]).stdout.strip() == "no open privacy requests"


def test_an_inactive_member_with_points_is_refused_verbatim_with_exit_1(crowdtwist: httpx.Client) -> None:
    crowdtwist.post(
        "/v2/users/296-1/activities", params={"id_type": "third_party_id"}, json={"activity_id": "a", "num_points": 5}
    )
    crowdtwist.put("/v2/users/296-1", params={"id_type": "third_party_id"}, json={"is_active": 0}).raise_for_status()
    result = runner.invoke(app, ["privacy", "delete", "--member", "296-1"])
    assert result.exit_code == 1
    assert result.stdout.startswith("privacy request PR-1: CrowdTwist refused the deletion of member 296-1")
    assert result.stdout.rstrip().endswith(": Member is inactive but has redeemable points")


def test_an_unreachable_crowdtwist_exits_75(crowdtwist: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTSYNC_CROWDTWIST__BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CTSYNC_CROWDTWIST__RETRY_ATTEMPTS", "1")
    result = runner.invoke(app, ["privacy", "delete", "--member", "296-1"])
    assert result.exit_code == 75
    assert result.stderr == (
        "privacy request PR-1: CrowdTwist unreachable: ConnectError: [Errno 111] Connection refused\n"
    )  # the cause named once, not "CrowdTwist unreachable: CrowdTwist unreachable: …"


def test_a_deleted_member_is_refused_by_resubmit_until_restored(crowdtwist: httpx.Client) -> None:
    settings = load_settings()
    store = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)
    store.upsert_member(siebel_member(**{"Member Number": "296-1"}))
    assert runner.invoke(app, ["privacy", "delete", "--member", "296-1"]).exit_code == 0
    refused = runner.invoke(app, ["resubmit", "--member", "296-1", "--force", "--dry-run"])
    assert refused.exit_code == 1
    assert "refused 296-1: deleted in CrowdTwist on privacy request PR-1" in refused.stderr
    restored = runner.invoke(app, ["privacy", "restore", "--member", "296-1", "--reference", "T-3"])
    assert restored.exit_code == 0, restored.output
    assert restored.stdout.startswith("privacy request PR-2: member 296-1 may be synced again")
    assert runner.invoke(app, ["resubmit", "--member", "296-1", "--dry-run"]).exit_code == 0
    assert runner.invoke(app, ["privacy", "restore", "--member", "296-1"]).exit_code == 1


def test_neither_the_key_nor_the_members_data_reach_the_log_or_the_ledger(
    crowdtwist: httpx.Client, sandbox: SandboxServer, tmp_path: Path
) -> None:
    profile = crowdtwist.get("/v2/users/296-1/", params={"id_type": "third_party_id"}).json()
    sandbox.state.add_list_items(profile["id"], "rewards", [{"title": "Marguerite's reward"}])
    sandbox.state.set_faults(error_rate=0.3)  # retries: log lines
    log_lines = []
    for command in (
        [
            "--log-level",
            "DEBUG",
            "--log-json",
            "privacy",
            "access",
            "--email",
            EMAIL,
            "--out",
            str(tmp_path / "a.json"),
        ],
        ["--log-level", "DEBUG", "--log-json", "privacy", "delete", "--email", EMAIL, "--wait"],
    ):
        result = runner.invoke(app, command)
        log_lines.append(result.output)
    sandbox.state.set_faults(error_rate=0.0)
    ledger = (tmp_path / "ledger.sqlite").read_bytes()
    for secret in (API_KEY, EMAIL, "Marguerite"):
        assert all(secret not in text for text in log_lines), secret
        assert secret.encode() not in ledger, secret
