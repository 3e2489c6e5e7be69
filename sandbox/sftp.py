"""An in-process SFTP server standing in for CrowdTwist's drop folder, so `ct-sync sandbox` lets a newcomer send
a segment over real SSH with no setup. Like CrowdTwist's servers it accepts one user key and only the aes-ctr
ciphers; files land in one local folder, and no path may leave it.

It is for trying things out on loopback; the tests of the SFTP adapter run against OpenSSH's own sshd.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import paramiko
from paramiko.common import AUTH_FAILED, AUTH_SUCCESSFUL, OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED, OPEN_SUCCEEDED
from paramiko.sftp import SFTP_FAILURE, SFTP_NO_SUCH_FILE, SFTP_OK, SFTP_PERMISSION_DENIED

from config.settings import CROWDTWIST_SFTP_CIPHERS

SANDBOX_USER = "ct-sync"


@dataclass(frozen=True)
class SandboxKeys:
    """The sandbox's host key, the user key it accepts, and the known_hosts file that pins the host key."""

    host_key: Path
    user_key: Path
    known_hosts: Path


def ensure_sandbox_keys(folder: Path, *, port: int) -> SandboxKeys:
    """Make (once) a host key and a user key under `folder`; (re)write known_hosts for this port."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = SandboxKeys(folder / "host_key", folder / "user_key", folder / "known_hosts")
    for path in (keys.host_key, keys.user_key):
        if not path.exists():
            paramiko.ECDSAKey.generate().write_private_key_file(str(path))
            os.chmod(path, 0o600)
    host = paramiko.ECDSAKey.from_private_key_file(str(keys.host_key))
    keys.known_hosts.write_text(f"[127.0.0.1]:{port} {host.get_name()} {host.get_base64()}\n")
    return keys


class SandboxSftpServer:
    """Serves `folder` over SFTP on 127.0.0.1 on a background thread; a context manager."""

    def __init__(self, folder: Path, keys: SandboxKeys, *, port: int = 0) -> None:
        self.folder = folder.resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._host_key = paramiko.ECDSAKey.from_private_key_file(str(keys.host_key))
        self._user_key = paramiko.ECDSAKey.from_private_key_file(str(keys.user_key))
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port = int(self._listener.getsockname()[1])
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="sandbox-sftp", daemon=True)

    def __enter__(self) -> SandboxSftpServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below; close() alone does not
        self._listener.close()
        self._thread.join(5)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            transport = paramiko.Transport(connection)
            transport.get_security_options().ciphers = tuple(CROWDTWIST_SFTP_CIPHERS)
            transport.add_server_key(self._host_key)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, _FolderSftp, self.folder)
            with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
                transport.start_server(server=_KeyOnly(self._user_key))


class _KeyOnly(paramiko.ServerInterface):
    def __init__(self, accepted: paramiko.PKey) -> None:
        self._accepted = accepted

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if username == SANDBOX_USER and key == self._accepted:
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return OPEN_SUCCEEDED if kind == "session" else OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _FolderSftp(paramiko.SFTPServerInterface):
    """The SFTP requests a drop folder needs (stat, open, rename, remove, list), confined to one folder."""

    def __init__(self, server: paramiko.ServerInterface, root: Path) -> None:
        super().__init__(server)
        self._root = root

    def _local(self, path: str) -> Path | None:
        relative = posixpath.normpath("/" + path).lstrip("/")
        local = (self._root / relative).resolve()
        return local if local == self._root or self._root in local.parents else None

    def canonicalize(self, path: str) -> str:
        return posixpath.normpath("/" + path)

    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        local = self._local(path)
        if local is None or not local.is_dir():
            return SFTP_NO_SUCH_FILE
        return [paramiko.SFTPAttributes.from_stat(entry.stat(), entry.name) for entry in local.iterdir()]

    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        local = self._local(path)
        if local is None or not local.exists():
            return SFTP_NO_SUCH_FILE
        return paramiko.SFTPAttributes.from_stat(local.stat(), local.name)

    lstat = stat

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> paramiko.SFTPHandle | int:
        local = self._local(path)
        if local is None:
            return SFTP_PERMISSION_DENIED
        if not local.parent.is_dir():
            return SFTP_NO_SUCH_FILE
        writing = flags & (os.O_WRONLY | os.O_RDWR)
        try:
            descriptor = os.open(local, flags | getattr(os, "O_BINARY", 0), 0o644)
            handle = paramiko.SFTPHandle(flags)
            stream = os.fdopen(descriptor, "r+b" if flags & os.O_RDWR else ("wb" if writing else "rb"))
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno or 0)
        handle.filename = str(local)  # type: ignore[attr-defined]  # paramiko's stat() on a handle reads it
        if writing:
            handle.writefile = stream  # type: ignore[attr-defined]
        else:
            handle.readfile = stream  # type: ignore[attr-defined]
        return handle

    def rename(self, oldpath: str, newpath: str) -> int:
        old, new = self._local(oldpath), self._local(newpath)
        if old is None or new is None:
            return SFTP_PERMISSION_DENIED
        if new.exists():
            return SFTP_FAILURE  # SFTP's rename never replaces a file, as OpenSSH's
        try:
            old.rename(new)
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno or 0)
        return SFTP_OK

    def remove(self, path: str) -> int:
        local = self._local(path)
        if local is None or not local.is_file():
            return SFTP_NO_SUCH_FILE
        local.unlink()
        return SFTP_OK
