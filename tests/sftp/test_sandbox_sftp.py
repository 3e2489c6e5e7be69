"""The sandbox's in-process SFTP server (for `ct-sync sandbox`) takes what the SFTP adapter sends, like
CrowdTwist's: one user key, the aes-ctr ciphers, files in one folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import SftpSettings
from crowdtwist_client.drop.sftp import SftpDrop
from sandbox.sftp import SANDBOX_USER, SandboxKeys, SandboxSftpServer, ensure_sandbox_keys
from sync_worker.core.errors import ConfigurationError


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[SandboxSftpServer, SandboxKeys]]:
    with SandboxSftpServer(tmp_path / "drop", ensure_sandbox_keys(tmp_path / "keys", port=0)) as server:
        yield server, ensure_sandbox_keys(tmp_path / "keys", port=server.port)


def settings(server: SandboxSftpServer, keys: SandboxKeys, **overrides: object) -> SftpSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": server.port,
        "username": SANDBOX_USER,
        "key_file": keys.user_key,
        "known_hosts": keys.known_hosts,
        "attempts": 1,
    }
    return SftpSettings(**{**values, **overrides})  # type: ignore[arg-type]


def test_the_sftp_adapter_delivers_into_the_sandbox_folder_over_a_ctr_cipher(
    sandbox: tuple[SandboxSftpServer, SandboxKeys], tmp_path: Path
) -> None:
    server, keys = sandbox
    segment = tmp_path / "segment.csv"
    segment.write_text("CTUserID\n1001\n")
    drop = SftpDrop(settings(server, keys))
    assert drop.deliver(segment, "Gold_20261122_1005.csv").size == 14
    assert [path.name for path in server.folder.iterdir()] == ["Gold_20261122_1005.csv"]
    assert drop.negotiated_cipher().endswith("-ctr")


def test_the_sandbox_refuses_any_other_user_key(sandbox: tuple[SandboxSftpServer, SandboxKeys], tmp_path: Path) -> None:
    server, keys = sandbox
    stranger = ensure_sandbox_keys(tmp_path / "stranger", port=server.port)
    with pytest.raises(ConfigurationError, match="refused the login"):
        SftpDrop(settings(server, keys, key_file=stranger.user_key)).negotiated_cipher()
