"""Every form of private key a customer may hold for CrowdTwist's SFTP folder: OpenSSH or PEM format, RSA, ECDSA or
Ed25519, with a passphrase or without. Ed25519 keys exist only in OpenSSH format (`ssh-keygen -m PEM -t ed25519`
writes OpenSSH format all the same), so there is no PEM Ed25519 case. The keys are made here by `ssh-keygen`, as a
customer makes them; loading them needs no server, logging in with them needs the test sshd.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from config.settings import SftpSettings
from crowdtwist_client.drop.sftp import SftpDrop, _load_key
from sync_worker.core.errors import ConfigurationError
from tests.sshd import SshServer, keygen
from tests.unavailable import unavailable

PASSPHRASE = "Crowd Twist é-7"  # a space and a non-ASCII letter: it must reach the key as UTF-8, whole
WRONG = "not the passphrase"


@dataclass(frozen=True)
class KeyForm:
    kind: str  # ssh-keygen -t
    key_format: str | None  # ssh-keygen -m; None: OpenSSH's own format
    protected: bool

    @property
    def name(self) -> str:
        return f"{self.kind} {self.key_format or 'OpenSSH'} {'with' if self.protected else 'without'} passphrase"


FORMS = [
    KeyForm(kind, key_format, protected)
    for kind, key_format in [("rsa", None), ("rsa", "PEM"), ("ecdsa", None), ("ecdsa", "PEM"), ("ed25519", None)]
    for protected in (False, True)
]
PROTECTED = [form for form in FORMS if form.protected]
UNPROTECTED = [form for form in FORMS if not form.protected]
# PKCS#8 (`-m PKCS8`, also what `openssl genpkey` writes) is a format paramiko does not read: refused, not used.
PKCS8 = [KeyForm(kind, "PKCS8", protected) for kind in ("rsa", "ecdsa") for protected in (False, True)]


def ids(forms: list[KeyForm]) -> list[str]:
    return [form.name for form in forms]


@pytest.fixture(scope="module")
def ssh_keygen() -> None:
    if shutil.which("ssh-keygen") is None:
        unavailable("ssh-keygen is not installed (Debian: openssh-client)")


@pytest.fixture(scope="module")
def keys(ssh_keygen: None, tmp_path_factory: pytest.TempPathFactory) -> dict[KeyForm, Path]:
    """One key file per form, made once for the module."""
    folder = tmp_path_factory.mktemp("keys")
    made = {}
    for number, form in enumerate([*FORMS, *PKCS8]):
        path = folder / f"key_{number}"
        keygen(path, kind=form.kind, key_format=form.key_format, passphrase=PASSPHRASE if form.protected else "")
        made[form] = path
    return made


def public_half(private_key: Path) -> str:
    return private_key.with_suffix(".pub").read_text().split()[1]


@pytest.mark.parametrize("form", FORMS, ids=ids(FORMS))
def test_every_key_form_loads_with_its_passphrase(keys: dict[KeyForm, Path], form: KeyForm) -> None:
    key = _load_key(keys[form], PASSPHRASE if form.protected else None)
    assert key.get_base64() == public_half(keys[form])


@pytest.mark.parametrize("form", UNPROTECTED, ids=ids(UNPROTECTED))
def test_a_passphrase_set_for_a_key_without_one_is_not_used(keys: dict[KeyForm, Path], form: KeyForm) -> None:
    """As `ssh` does; paramiko's `PKey.from_path` alone would refuse the key."""
    assert _load_key(keys[form], PASSPHRASE).get_base64() == public_half(keys[form])


@pytest.mark.parametrize("form", PROTECTED, ids=ids(PROTECTED))
def test_a_wrong_passphrase_names_its_setting_and_not_the_passphrase(keys: dict[KeyForm, Path], form: KeyForm) -> None:
    with pytest.raises(ConfigurationError) as refused:
        _load_key(keys[form], WRONG)
    assert refused.value.message == f"CTSYNC_SFTP__KEY_PASSPHRASE does not decrypt {keys[form]} (CTSYNC_SFTP__KEY_FILE)"


@pytest.mark.parametrize("form", PROTECTED, ids=ids(PROTECTED))
def test_a_protected_key_without_a_passphrase_names_the_setting(keys: dict[KeyForm, Path], form: KeyForm) -> None:
    with pytest.raises(ConfigurationError) as refused:
        _load_key(keys[form], None)
    assert refused.value.message == f"CTSYNC_SFTP__KEY_FILE: {keys[form]} is encrypted: set CTSYNC_SFTP__KEY_PASSPHRASE"


@pytest.mark.parametrize("form", PKCS8, ids=ids(PKCS8))
def test_a_pkcs8_key_is_refused_saying_how_to_rewrite_it(keys: dict[KeyForm, Path], form: KeyForm) -> None:
    with pytest.raises(ConfigurationError) as refused:
        _load_key(keys[form], PASSPHRASE)
    assert refused.value.message.startswith(f"CTSYNC_SFTP__KEY_FILE: cannot load {keys[form]}: ")
    assert "`ssh-keygen -p -f FILE` rewrites a key in OpenSSH format" in refused.value.message
    assert PASSPHRASE not in refused.value.message


@pytest.mark.filterwarnings("ignore:SSH DSA keys are deprecated")  # cryptography's, on reading one
@pytest.mark.usefixtures("ssh_keygen")
def test_a_dsa_key_is_refused_naming_the_key_types_read(tmp_path: Path) -> None:
    """paramiko no longer signs with DSA (nor does OpenSSH's server accept it by default)."""
    dsa = tmp_path / "id_dsa"
    try:
        keygen(dsa, kind="dsa")
    except subprocess.CalledProcessError:
        pytest.skip("this ssh-keygen no longer makes DSA keys")
    with pytest.raises(ConfigurationError, match="ct-sync reads RSA, ECDSA and Ed25519 keys"):
        _load_key(dsa, None)


def test_a_file_that_is_not_a_key_is_refused(tmp_path: Path) -> None:
    not_a_key = tmp_path / "known_hosts"
    not_a_key.write_text("[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA\n")
    with pytest.raises(ConfigurationError, match=r"^CTSYNC_SFTP__KEY_FILE: cannot load .*known_hosts"):
        _load_key(not_a_key, None)


@pytest.mark.parametrize("form", PROTECTED, ids=ids(PROTECTED))
def test_every_protected_key_form_logs_in(keys: dict[KeyForm, Path], sshd: SshServer, form: KeyForm) -> None:
    """The loaded key signs the login the way OpenSSH's server wants it (RSA: rsa-sha2, not the SHA-1 ssh-rsa)."""
    sshd.authorize(keys[form].with_suffix(".pub"))
    settings = SftpSettings(**sshd.settings(key_file=keys[form], key_passphrase=PASSPHRASE))
    assert SftpDrop(settings).negotiated_cipher() in ("aes256-ctr", "aes192-ctr", "aes128-ctr")
