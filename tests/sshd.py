"""A real OpenSSH `sshd` on 127.0.0.1 for the SFTP tests and the segment benchmark: its own config, host key,
user key and upload folder, key authentication only. The login lands in the upload folder, as in CrowdTwist's
chroot (a real ChrootDirectory needs every folder above it root-owned and not world-writable, which /tmp is not).
Debian's `openssh-server` provides sshd (`scripts/ensure-services` installs it when missing).

`internal-sftp` options simulate what a real server can do to an upload: `deny` refuses SFTP requests by name
(`rename` for a refused rename), `ciphers` limits what the server offers. `keygen` makes key pairs with OpenSSH's
own tool, in any type, format and passphrase a customer may use; `authorize` lets one more of them log in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.unavailable import unavailable

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without its privilege-separation folder


@dataclass
class SshServer:
    root: Path
    port: int = 0
    ciphers: str | None = None
    deny: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def upload_dir(self) -> Path:
        """The folder the SFTP login lands in."""
        return self.root / "upload"

    @property
    def user_key(self) -> Path:
        return self.root / "user_key"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def username(self) -> str:
        import getpass

        return getpass.getuser()

    def settings(self, **overrides: object) -> dict[str, object]:
        """The `sftp` settings section that reaches this server."""
        values: dict[str, object] = {
            "host": "127.0.0.1",
            "port": self.port,
            "username": self.username,
            "key_file": self.user_key,
            "known_hosts": self.known_hosts,
            "attempts": 2,
            "retry_wait": "50ms",
            "timeout": "10s",
        }
        values.update(overrides)
        return values

    def authorize(self, public_key: Path) -> None:
        """Let one more user key log in (sshd reads the authorized keys at each login)."""
        with (self.root / "authorized_keys").open("a") as keys:
            keys.write(public_key.read_text())

    def environment(self) -> dict[str, str]:
        """The same as `CTSYNC_SFTP__*` variables, for a `ct-sync` process."""
        return {f"CTSYNC_SFTP__{key.upper()}": str(value) for key, value in self.settings().items()}

    def start(self) -> SshServer:
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.root / "host_key").exists():
            keygen(self.root / "host_key")
            keygen(self.user_key)
            shutil.copy(self.user_key.with_suffix(".pub"), self.root / "authorized_keys")
        self.upload_dir.mkdir(exist_ok=True)
        self.port = self.port or _free_port()
        host_key = (self.root / "host_key.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_key[0]} {host_key[1]}\n")
        config = self.root / "sshd_config"
        config.write_text(self._config())
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        with (self.root / "sshd.log").open("ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=log, stdout=log)
        deadline = time.monotonic() + 30
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {(self.root / 'sshd.log').read_text()[-2000:]}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Gone at once, sessions included (their processes are the listener's children)."""
        if self.process is None:
            return
        for pid in [*_descendants(self.process.pid), self.process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def _config(self) -> str:
        deny = f" -P {','.join(self.deny)}" if self.deny else ""
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.root / 'host_key'}",
            f"PidFile {self.root / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            f"AllowUsers {self.username}",
            f"ForceCommand internal-sftp -d {self.upload_dir}{deny}",
            f"Subsystem sftp internal-sftp -d {self.upload_dir}{deny}",
            "LogLevel ERROR",
        ]
        if self.ciphers:
            lines.append(f"Ciphers {self.ciphers}")
        return "\n".join(lines) + "\n"


def require_sshd() -> None:
    """Skip locally, fail in CI, when OpenSSH's server cannot run here."""
    problem = None
    if not SSHD.exists():
        problem = f"{SSHD} is not installed (Debian: apt-get install openssh-server; scripts/ensure-services does it)"
    elif os.geteuid() != 0:
        problem = "sshd needs root to run its privilege separation"
    if problem is not None:
        unavailable(problem)


def keygen(path: Path, *, kind: str = "ed25519", key_format: str | None = None, passphrase: str = "") -> None:
    """A key pair made by OpenSSH itself, as a customer makes one: `path` and `path.pub`. `key_format`: `PEM` or
    `PKCS8` for the private key (default: OpenSSH's own format); `passphrase`: the private key encrypted with it."""
    form = ["-m", key_format] if key_format else []
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *form, "-N", passphrase, "-C", "ct-sync-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc (sshd's sessions detach into sessions of their own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found
