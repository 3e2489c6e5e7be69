"""Adapter: CrowdTwist's SFTP drop folder, over paramiko. The only module that speaks SSH.

What CrowdTwist asks (crowdtwist-api.md): key authentication, and only the ciphers aes256-ctr, aes192-ctr and
aes128-ctr. What we add: the server's host key must be in the known_hosts file we are given (no trust on first
use, and no switch to turn the check off); a file is uploaded under a hidden temporary name, renamed when
complete and its remote size checked, so CrowdTwist's 20-minute poll never sees half a file; connection faults
are retried (tenacity), each try starting the upload afresh.

paramiko or asyncssh? Both are maintained and both do everything this needs: key-only login, host keys pinned
from a known_hosts file, a cipher list, rename, stat, and an in-process server (for `ct-sync sandbox`).
paramiko fits ct-sync as it is: the rest of ct-sync is synchronous and threaded (httpx's sync client, kombu), and
paramiko's blocking API slots in where asyncssh would need an event loop run around every upload; its
`disabled_algorithms` pins the cipher list (and its security options the order we offer them in: the setting's,
so the first the server accepts is used), and `SSHClient` asks the server for the host-key type the known_hosts
file holds. asyncssh pipelines SFTP writes harder and is the faster of the two at bulk transfer; the upload
figure that matters (ct-sync against OpenSSH's own `sftp` on the same file) is in docs/benchmarks.md.

Errors leave this module in the core's tree only: a key that cannot be read or decrypted, a host key that does not
match, a refused login, no common cipher, a missing folder or a refused write/rename are `ConfigurationError`s
(exit 2, retrying cannot help); an unreachable server, a dropped connection or a failing disk are
`TransientError`s (retried, then exit 75).
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko
import structlog
from paramiko.pkey import UnknownKeyType
from paramiko.ssh_exception import IncompatiblePeer
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from config.settings import SftpSettings
from sync_worker.core.errors import ConfigurationError, CtSyncError, TransientError
from sync_worker.core.ports import Delivery

SYSTEM = "sftp"
log = structlog.get_logger("ct_sync.sftp")
# Larger than paramiko's 2 MB default: more data in flight per round trip on a long link.
_WINDOW_BYTES = 16 * 1024 * 1024


class SftpDrop:
    """Delivers files to one SFTP folder. Settings are checked when it is built (key, known_hosts, ciphers)."""

    def __init__(self, settings: SftpSettings) -> None:
        if settings.host is None or settings.username is None:
            raise ConfigurationError("CTSYNC_SFTP__HOST and __USERNAME are required for SFTP", system=SYSTEM)
        self._host = settings.host
        self._port = settings.port
        self._username = settings.username
        self._folder = settings.segment_directory.strip("/")
        self._timeout = settings.timeout.total_seconds()
        self._attempts = settings.attempts
        self._retry_wait = settings.retry_wait.total_seconds()
        self._disabled_ciphers = _disabled_ciphers(settings.ciphers)
        self._ciphers = tuple(settings.ciphers)
        self._known_hosts = _check_known_hosts(settings.known_hosts)
        passphrase = settings.key_passphrase.get_secret_value() if settings.key_passphrase else None
        self._key = _load_key(settings.key_file, passphrase)
        # paramiko narrates every connection at INFO; our own lines say what matters, its warnings still show.
        logging.getLogger("paramiko").setLevel(max(logging.WARNING, logging.getLogger("paramiko").level))

    @property
    def destination(self) -> str:
        return f"sftp://{self._username}@{self._host}:{self._port}/{self._folder}"

    def deliver(self, local: Path, name: str, *, progress: Callable[[int], None] | None = None) -> Delivery:
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self._attempts),
            wait=wait_random_exponential(multiplier=self._retry_wait, max=60),
            before_sleep=_log_retry,
            reraise=True,
        )
        return retrying(self._deliver_once, local, name, progress)

    def negotiated_cipher(self) -> str:
        """Log in and say which cipher the server agreed to (for `check` and the tests)."""
        with self._session() as (_, transport):
            return transport.local_cipher

    # -- one try ---------------------------------------------------------------------------------------------------

    def _deliver_once(self, local: Path, name: str, progress: Callable[[int], None] | None) -> Delivery:
        size = local.stat().st_size
        final = posixpath.join(self._folder, name) if self._folder else name
        temporary = posixpath.join(self._folder, f".{name}.part") if self._folder else f".{name}.part"
        with self._session() as (sftp, _):
            try:
                existing = _remote_size(sftp, final)
                if existing is None:
                    with local.open("rb") as reading:
                        callback = (lambda done, _total: progress(done)) if progress else None
                        # confirm=True stats the temporary file and refuses a size that differs from ours.
                        _sftp_call("upload", temporary, lambda: sftp.putfo(reading, temporary, size, callback))
                    # Plain rename (not posix-rename): it refuses to replace a file already under the final name.
                    _sftp_call("rename", final, lambda: sftp.rename(temporary, final))
                    existing = _remote_size(sftp, final)
            except CtSyncError:
                with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                    sftp.remove(temporary)
                raise
        if existing != size:
            # Either a different file already had this name, or the server kept a different size.
            raise ConfigurationError(
                f"{self.destination}: {name} holds {existing} bytes, not {size}: not replaced", system=SYSTEM
            )
        return Delivery(name=name, size=size, destination=self.destination)

    @contextmanager
    def _session(self) -> Iterator[tuple[paramiko.SFTPClient, paramiko.Transport]]:
        client = paramiko.SSHClient()
        client.load_host_keys(str(self._known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            try:
                client.connect(
                    self._host, port=self._port, username=self._username, pkey=self._key,
                    timeout=self._timeout, banner_timeout=self._timeout, auth_timeout=self._timeout,
                    channel_timeout=self._timeout, allow_agent=False, look_for_keys=False,
                    disabled_algorithms={"ciphers": self._disabled_ciphers},
                    transport_factory=self._transport,
                )  # fmt: skip
                transport = client.get_transport()
                if transport is None:
                    raise paramiko.SSHException("no transport after login")
                sftp = paramiko.SFTPClient.from_transport(transport, window_size=_WINDOW_BYTES)
                if sftp is None:
                    raise paramiko.SSHException("the server refused the sftp subsystem")
                sftp.get_channel().settimeout(self._timeout)  # type: ignore[union-attr]
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise self._connect_error(exc) from None
            yield sftp, transport
        finally:
            client.close()

    def _transport(self, sock: object, **options: object) -> paramiko.Transport:
        """paramiko's transport, offering the ciphers in the setting's order (SSH takes the client's first one the
        server accepts); without this, paramiko's own order would win (aes128-ctr before aes256-ctr)."""
        transport = paramiko.Transport(sock, **options)  # type: ignore[arg-type]
        transport.get_security_options().ciphers = self._ciphers
        return transport

    def _connect_error(self, exc: BaseException) -> CtSyncError:
        where = f"{self._host}:{self._port}"
        if isinstance(exc, paramiko.BadHostKeyException):
            return ConfigurationError(
                f"the host key of {where} does not match CTSYNC_SFTP__KNOWN_HOSTS ({self._known_hosts}): nothing sent",
                system=SYSTEM,
            )
        if isinstance(exc, paramiko.AuthenticationException):
            return ConfigurationError(
                f"{where} refused the login of {self._username} with CTSYNC_SFTP__KEY_FILE: nothing sent",
                system=SYSTEM,
            )
        text = str(exc)
        if "not found in known_hosts" in text:
            return ConfigurationError(
                f"{where} is not in CTSYNC_SFTP__KNOWN_HOSTS ({self._known_hosts}): add its host key; nothing sent",
                system=SYSTEM,
            )
        if isinstance(exc, IncompatiblePeer) or "no acceptable" in text:
            return ConfigurationError(
                f"{where} accepts none of CTSYNC_SFTP__CIPHERS or of our other algorithms ({text}): nothing sent",
                system=SYSTEM,
            )
        return TransientError(f"SFTP server {where} unreachable: {text or type(exc).__name__}", system=SYSTEM)


def _sftp_call(operation: str, path: str, call: Callable[[], object]) -> None:
    """One SFTP request, its failure translated: refused or missing is configuration, anything else transient."""
    try:
        call()
    except PermissionError:
        raise ConfigurationError(
            f"the SFTP server refused to {operation} {path}: permission denied", system=SYSTEM
        ) from None
    except FileNotFoundError:
        raise ConfigurationError(
            f"the SFTP server has no folder for {path} (check CTSYNC_SFTP__SEGMENT_DIRECTORY)", system=SYSTEM
        ) from None
    except (OSError, EOFError, paramiko.SSHException) as exc:
        detail = str(exc) or type(exc).__name__
        raise TransientError(f"SFTP {operation} of {path} failed: {detail}", system=SYSTEM) from None


def _remote_size(sftp: paramiko.SFTPClient, path: str) -> int | None:
    try:
        return sftp.stat(path).st_size
    except FileNotFoundError:
        return None
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise TransientError(f"SFTP stat of {path} failed: {exc or type(exc).__name__}", system=SYSTEM) from None


def _disabled_ciphers(allowed: list[str]) -> list[str]:
    """paramiko takes a cipher list as the ciphers it must not offer."""
    supported = list(paramiko.Transport._preferred_ciphers)  # type: ignore[attr-defined]  # no public list
    unknown = [cipher for cipher in allowed if cipher not in supported]
    if unknown:
        raise ConfigurationError(
            f"CTSYNC_SFTP__CIPHERS: {', '.join(unknown)} not supported (choose from {', '.join(supported)})",
            system=SYSTEM,
        )
    return [cipher for cipher in supported if cipher not in allowed]


def _check_known_hosts(path: Path | None) -> Path:
    if path is None or not path.is_file():
        raise ConfigurationError(f"CTSYNC_SFTP__KNOWN_HOSTS: no such file: {path}", system=SYSTEM)
    try:
        paramiko.HostKeys(str(path))
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise ConfigurationError(f"CTSYNC_SFTP__KNOWN_HOSTS: cannot read {path}: {exc}", system=SYSTEM) from None
    return path


def _load_key(path: Path | None, passphrase: str | None) -> paramiko.PKey:
    """The private key, in OpenSSH or PEM format, RSA, ECDSA or Ed25519, with or without a passphrase.

    `PKey.from_path` reads the file with `cryptography` first, which takes the passphrase only as bytes, refuses a
    passphrase for a key that has none, and raises TypeError (not paramiko's PasswordRequiredException) for an
    encrypted key without one. So: the key is read without the passphrase first, as `ssh` does (a passphrase set
    for an unprotected key is not used), and with it, as bytes, only when the key turns out to be encrypted.
    """
    if path is None or not path.is_file():
        raise ConfigurationError(f"CTSYNC_SFTP__KEY_FILE: no such file: {path}", system=SYSTEM)
    try:
        return paramiko.PKey.from_path(path)
    except TypeError:
        pass  # encrypted: cryptography's word for it (its only TypeError for a key file given no passphrase)
    except (OSError, ValueError, paramiko.SSHException, UnknownKeyType) as exc:
        raise _unreadable_key(path, exc) from None
    if passphrase is None:
        raise ConfigurationError(
            f"CTSYNC_SFTP__KEY_FILE: {path} is encrypted: set CTSYNC_SFTP__KEY_PASSPHRASE", system=SYSTEM
        )
    try:
        # Bytes, though paramiko's hints say str; UTF-8, as paramiko's own key readers encode a str passphrase.
        return paramiko.PKey.from_path(path, passphrase.encode())  # type: ignore[arg-type]
    except ValueError:
        raise ConfigurationError(
            f"CTSYNC_SFTP__KEY_PASSPHRASE does not decrypt {path} (CTSYNC_SFTP__KEY_FILE)", system=SYSTEM
        ) from None
    except (OSError, paramiko.SSHException, UnknownKeyType) as exc:
        raise _unreadable_key(path, exc) from None


def _unreadable_key(path: Path, exc: Exception) -> ConfigurationError:
    # paramiko's and cryptography's texts name a format or key type; they never hold the passphrase itself.
    forms = (
        ""
        if isinstance(exc, OSError)
        else " (ct-sync reads RSA, ECDSA and Ed25519 keys in OpenSSH or PEM format; "
        "`ssh-keygen -p -f FILE` rewrites a key in OpenSSH format)"
    )
    return ConfigurationError(f"CTSYNC_SFTP__KEY_FILE: cannot load {path}: {exc}{forms}", system=SYSTEM)


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning("sftp_retry", attempt=state.attempt_number, error=getattr(error, "message", str(error)))
