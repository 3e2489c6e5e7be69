"""The SFTP drop against a real OpenSSH sshd on loopback: host key pinned, key login, ctr ciphers only, a file
visible whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import SftpSettings
from crowdtwist_client.drop.sftp import SftpDrop
from sync_worker.core.errors import ConfigurationError, TransientError
from tests.sshd import SshServer, keygen, require_sshd

NAME = "Gold_20261122_1005.csv"


def drop_for(server: SshServer, **overrides: object) -> SftpDrop:
    return SftpDrop(SftpSettings(**server.settings(**overrides)))  # type: ignore[arg-type]


def test_a_file_arrives_whole_under_its_name_and_no_temporary_is_left(
    clean_upload: SshServer, segment_file: Path
) -> None:
    delivery = drop_for(clean_upload).deliver(segment_file, NAME)
    assert delivery.size == segment_file.stat().st_size
    assert [path.name for path in clean_upload.upload_dir.iterdir()] == [NAME]
    assert (clean_upload.upload_dir / NAME).read_bytes() == segment_file.read_bytes()


def test_the_negotiated_cipher_is_a_ctr_one(clean_upload: SshServer) -> None:
    assert drop_for(clean_upload).negotiated_cipher() in ("aes256-ctr", "aes192-ctr", "aes128-ctr")


@pytest.mark.parametrize("ciphers", [["aes256-ctr", "aes192-ctr", "aes128-ctr"], ["aes192-ctr", "aes128-ctr"]])
def test_the_ciphers_are_offered_in_the_settings_order(clean_upload: SshServer, ciphers: list[str]) -> None:
    """SSH takes the client's first cipher the server accepts: the setting's first, not paramiko's favourite."""
    assert drop_for(clean_upload, ciphers=ciphers).negotiated_cipher() == ciphers[0]


def test_a_server_offering_only_other_ciphers_is_refused(tmp_path: Path, segment_file: Path) -> None:
    require_sshd()
    server = SshServer(tmp_path / "gcm", ciphers="aes128-gcm@openssh.com,chacha20-poly1305@openssh.com").start()
    try:
        with pytest.raises(ConfigurationError, match="accepts none of CTSYNC_SFTP__CIPHERS"):
            drop_for(server).deliver(segment_file, NAME)
        assert list(server.upload_dir.iterdir()) == []
    finally:
        server.stop()


def test_a_host_key_that_does_not_match_known_hosts_sends_nothing(
    clean_upload: SshServer, segment_file: Path, tmp_path: Path
) -> None:
    keygen(tmp_path / "other_host_key")
    kind, key = (tmp_path / "other_host_key.pub").read_text().split()[:2]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{clean_upload.port} {kind} {key}\n")
    with pytest.raises(ConfigurationError, match="does not match CTSYNC_SFTP__KNOWN_HOSTS"):
        drop_for(clean_upload, known_hosts=wrong).deliver(segment_file, NAME)
    assert list(clean_upload.upload_dir.iterdir()) == []


def test_a_server_missing_from_known_hosts_is_not_trusted_on_first_use(
    clean_upload: SshServer, segment_file: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(ConfigurationError, match="is not in CTSYNC_SFTP__KNOWN_HOSTS"):
        drop_for(clean_upload, known_hosts=empty).deliver(segment_file, NAME)
    assert empty.read_text() == ""


def test_a_user_key_the_server_does_not_know_is_refused(
    clean_upload: SshServer, segment_file: Path, tmp_path: Path
) -> None:
    keygen(tmp_path / "stranger_key")
    with pytest.raises(ConfigurationError, match="refused the login"):
        drop_for(clean_upload, key_file=tmp_path / "stranger_key").deliver(segment_file, NAME)


def test_a_refused_rename_leaves_no_file_under_the_final_name_nor_a_temporary(
    tmp_path: Path, segment_file: Path
) -> None:
    require_sshd()
    server = SshServer(tmp_path / "norename", deny=("rename", "posix-rename")).start()
    try:
        with pytest.raises(ConfigurationError, match=f"refused to rename {NAME}: permission denied"):
            drop_for(server).deliver(segment_file, NAME)
        assert list(server.upload_dir.iterdir()) == []
    finally:
        server.stop()


def test_a_server_that_disappears_mid_upload_leaves_no_file_and_is_unreachable_after_retries(
    tmp_path: Path, segment_file: Path
) -> None:
    require_sshd()
    server = SshServer(tmp_path / "vanishing").start()
    drop = drop_for(server, attempts=2)

    def vanish(done: int) -> None:
        if server.process is not None and done > 0:
            server.stop()  # listener and session, SIGKILL: a machine that falls off the network

    try:
        with pytest.raises(TransientError, match=r"unreachable|failed"):
            drop.deliver(segment_file, NAME, progress=vanish)
        assert not (server.upload_dir / NAME).exists()
    finally:
        server.stop()


def test_a_missing_segment_directory_is_a_configuration_error(clean_upload: SshServer, segment_file: Path) -> None:
    with pytest.raises(ConfigurationError, match="CTSYNC_SFTP__SEGMENT_DIRECTORY"):
        drop_for(clean_upload, segment_directory="no-such-folder").deliver(segment_file, NAME)


def test_an_unknown_cipher_name_is_refused_when_the_drop_is_built(clean_upload: SshServer) -> None:
    with pytest.raises(ConfigurationError, match="CTSYNC_SFTP__CIPHERS: aes256ctr not supported"):
        drop_for(clean_upload, ciphers=["aes256ctr"])
