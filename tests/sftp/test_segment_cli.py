"""`ct-sync segment export` (and `check`'s login) end to end against a real sshd, with a plain user key and a
passphrase-protected one: what it prints and the exit codes of design.md."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config import load_settings
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.bootstrap import build_privacy_register
from sync_worker.cli import app
from sync_worker.ledger.runs import RunLedger
from tests.builders import PROGRAM, siebel_member
from tests.sshd import SshServer, keygen

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def siebel(clean_upload: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqliteMemberStore:
    monkeypatch.setenv("CTSYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CTSYNC_SIEBEL__PROGRAM_ID", PROGRAM)
    for name, value in clean_upload.environment().items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    store = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)
    store.load_members(
        [
            siebel_member(**{"Member Number": f"296-{n}", "Tier": "Gold", "CT User Id": str(5000 + n) if n else ""})
            for n in range(6)
        ]
    )
    return store


def export(*arguments: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["segment", "export", *arguments])
    return result.exit_code, result.stdout, result.stderr


def test_a_segment_is_delivered_archived_and_recorded(siebel: SqliteMemberStore, clean_upload: SshServer) -> None:
    code, out, err = export("Gold", "--where", "Tier=Gold", "--ready", "empty")
    assert code == 0, err
    [data_file] = clean_upload.upload_dir.glob("Gold_*.csv")
    assert data_file.read_text() == "CTUserID\n5001\n5002\n5003\n5004\n5005\n"
    assert data_file.with_suffix(".ready").read_text() == ""
    assert f"delivered {data_file.name} to sftp://" in out
    assert "left out 1: never synced (CrowdTwist does not know them)" in out
    settings = load_settings()
    assert (settings.archive_dir / data_file.name).read_bytes() == data_file.read_bytes()
    runs = RunLedger(settings.ledger_url)
    assert runs.run("cli-segment-Gold.1").files == [data_file.name]  # type: ignore[union-attr]
    runs.close()


def test_a_member_deleted_on_a_privacy_request_is_left_out_of_the_file(
    siebel: SqliteMemberStore, clean_upload: SshServer
) -> None:
    register = build_privacy_register(load_settings())
    try:
        request = register.open_request("delete", at=datetime.now(UTC), reference=None, member_number="296-3")
    finally:
        register.close()
    code, out, err = export("Gold", "--where", "Tier=Gold")
    assert code == 0, err
    [data_file] = clean_upload.upload_dir.glob("Gold_*.csv")
    assert data_file.read_text() == "CTUserID\n5001\n5002\n5004\n5005\n"  # not 5003, deleted on request
    assert "deleted on a privacy request" in out, out
    assert request.request_id


def test_an_invalid_name_exits_2_and_writes_nothing(siebel: SqliteMemberStore, clean_upload: SshServer) -> None:
    code, _, err = export("Gold/../x", "--where", "Tier=Gold")
    assert code == 2
    assert err.strip() == "ct-sync segment export: segment NAME 'Gold/../x' must be 1-50 of A-Z a-z 0-9 _ -"
    assert list(clean_upload.upload_dir.iterdir()) == []
    assert not (load_settings().data_dir / "segments").exists()


def test_a_wrong_host_key_exits_2_with_one_line(
    siebel: SqliteMemberStore, clean_upload: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keygen(tmp_path / "other_host_key")
    kind, key = (tmp_path / "other_host_key.pub").read_text().split()[:2]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{clean_upload.port} {kind} {key}\n")
    monkeypatch.setenv("CTSYNC_SFTP__KNOWN_HOSTS", str(wrong))
    code, _, err = export("Gold", "--where", "Tier=Gold")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "does not match CTSYNC_SFTP__KNOWN_HOSTS" in err
    assert list(clean_upload.upload_dir.iterdir()) == []


def test_an_unreachable_server_exits_75(
    siebel: SqliteMemberStore, clean_upload: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTSYNC_SFTP__PORT", "1")  # nothing listens on port 1
    code, _, err = export("Gold", "--where", "Tier=Gold")
    assert code == 75
    assert "SFTP server 127.0.0.1:1 unreachable" in err


def test_a_segment_over_the_size_limit_exits_1_and_sends_nothing(
    siebel: SqliteMemberStore, clean_upload: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTSYNC_SFTP__MAX_FILE_BYTES", "20")
    code, _, err = export("Gold", "--where", "Tier=Gold")
    assert code == 1
    assert "grows past 20 bytes at row 3" in err
    assert list(clean_upload.upload_dir.iterdir()) == []


def test_check_logs_in_to_the_sftp_server_and_names_the_cipher(
    siebel: SqliteMemberStore, clean_upload: SshServer
) -> None:
    result = runner.invoke(app, ["check"])
    sftp_row = next(line for line in result.stdout.splitlines() if "sftp" in line and "127.0.0.1" in line)
    assert "ok" in sftp_row
    assert "-ctr" in sftp_row
    assert list(clean_upload.upload_dir.iterdir()) == []


# -- a passphrase-protected key (issue 29): how CrowdTwist's SFTP keys are normally kept ---------------------------

PASSPHRASE = "Crowd Twist é-7"


@pytest.fixture(scope="module")
def protected_key(sshd: SshServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An RSA key in OpenSSH's format, encrypted with PASSPHRASE, that the server accepts."""
    key = tmp_path_factory.mktemp("protected") / "id_rsa"
    keygen(key, kind="rsa", passphrase=PASSPHRASE)
    sshd.authorize(key.with_suffix(".pub"))
    return key


@pytest.fixture
def protected(siebel: SqliteMemberStore, protected_key: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The segment fixtures, logging in with the protected key and its passphrase."""
    monkeypatch.setenv("CTSYNC_SFTP__KEY_FILE", str(protected_key))
    monkeypatch.setenv("CTSYNC_SFTP__KEY_PASSPHRASE", PASSPHRASE)
    return protected_key


def test_a_protected_key_delivers_a_segment_by_where(protected: Path, clean_upload: SshServer) -> None:
    code, out, err = export("Gold", "--where", "Tier=Gold")
    assert code == 0, err
    [data_file] = clean_upload.upload_dir.glob("Gold_*.csv")
    assert data_file.read_text() == "CTUserID\n5001\n5002\n5003\n5004\n5005\n"
    runs = RunLedger(load_settings().ledger_url)
    lines = [line for _, line in runs.log_lines("cli-segment-Gold.1")]
    runs.close()
    assert lines
    assert PASSPHRASE not in out + err + "\n".join(lines)


def test_a_protected_key_delivers_a_segment_from_a_member_list(
    protected: Path, clean_upload: SshServer, tmp_path: Path
) -> None:
    listing = tmp_path / "members.csv"
    listing.write_text("Member Number\n296-2\n296-4\n")
    code, out, err = export("Listed", "--from-file", str(listing))
    assert code == 0, err
    [data_file] = clean_upload.upload_dir.glob("Listed_*.csv")
    assert data_file.read_text() == "CTUserID\n5002\n5004\n"
    assert PASSPHRASE not in out + err


def test_a_protected_key_serves_a_dry_run_that_sends_nothing(protected: Path, clean_upload: SshServer) -> None:
    code, out, err = export("Gold", "--where", "Tier=Gold", "--dry-run")
    assert code == 0, err
    assert "dry run: would send Gold_" in out
    assert list(clean_upload.upload_dir.iterdir()) == []


def test_check_logs_in_with_a_protected_key(protected: Path, clean_upload: SshServer) -> None:
    result = runner.invoke(app, ["check", "--json"])
    sftp = next(check for check in json.loads(result.stdout)["checks"] if check["system"] == "sftp")
    assert sftp["result"] == "ok", sftp
    assert sftp["detail"].endswith("-ctr")
    assert PASSPHRASE not in result.stdout + result.stderr


@pytest.mark.usefixtures("restore_logging")
def test_a_wrong_passphrase_exits_2_with_one_line_naming_its_setting_and_never_the_passphrase(
    protected: Path, clean_upload: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "Twist Crowd 7-é"
    monkeypatch.setenv("CTSYNC_SFTP__KEY_PASSPHRASE", wrong)
    exported = runner.invoke(app, ["--log-level", "DEBUG", "segment", "export", "Gold", "--where", "Tier=Gold"])
    assert exported.exit_code == 2, exported.output
    assert exported.stderr.strip().splitlines() == [
        f"ct-sync: CTSYNC_SFTP__KEY_PASSPHRASE does not decrypt {protected} (CTSYNC_SFTP__KEY_FILE)"
    ]
    checked = runner.invoke(app, ["--log-level", "DEBUG", "check", "--json"])
    assert checked.exit_code == 2, checked.output
    sftp = next(check for check in json.loads(checked.stdout)["checks"] if check["system"] == "sftp")
    assert sftp["result"] == "configuration"
    assert "CTSYNC_SFTP__KEY_PASSPHRASE does not decrypt" in sftp["detail"]
    # The log goes to stderr, every line of it at DEBUG.
    everything = exported.stdout + exported.stderr + checked.stdout + checked.stderr
    assert wrong not in everything
    assert PASSPHRASE not in everything
    assert list(clean_upload.upload_dir.iterdir()) == []


def test_a_protected_key_without_its_passphrase_exits_2_naming_the_setting(
    protected: Path, clean_upload: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CTSYNC_SFTP__KEY_PASSPHRASE")
    code, _, err = export("Gold", "--where", "Tier=Gold")
    assert code == 2
    assert err.strip().splitlines() == [
        f"ct-sync: CTSYNC_SFTP__KEY_FILE: {protected} is encrypted: set CTSYNC_SFTP__KEY_PASSPHRASE"
    ]
    assert list(clean_upload.upload_dir.iterdir()) == []
