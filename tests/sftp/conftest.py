"""A real OpenSSH sshd per test module (and special ones per test), started on 127.0.0.1 by the tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sshd import SshServer, require_sshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    require_sshd()
    server = SshServer(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()


@pytest.fixture
def clean_upload(sshd: SshServer) -> SshServer:
    """The module's server with an empty upload folder."""
    for leftover in sshd.upload_dir.iterdir():
        leftover.unlink()
    return sshd


@pytest.fixture
def segment_file(tmp_path: Path) -> Path:
    path = tmp_path / "segment.csv"
    path.write_text("CTUserID\n" + "".join(f"{1000 + n}\n" for n in range(20_000)))
    return path
