"""The production profile, end to end (issue 29): one story through every command of ct-sync, each a real `ct-sync`
process, against the stack a customer runs, with every production setting given and none left at its embedded
default unless this file says why.

    RabbitMQ     quorum queues of the test's own, with a delivery limit
    PostgreSQL   a database of the test's own holds the ledger (history, runs, schedule marks, privacy, actions)
    Redis        the shared CrowdTwist budget (a redis-server of the test's own)
    CrowdTwist   the sandbox over HTTPS (a private CA named by CA_BUNDLE), the API key in the header
    Siebel       the REST emulator over HTTPS, Basic auth, the customer's own business object and field names
    SFTP         OpenSSH sshd, a passphrase-protected key, the server's host key in known_hosts, a segment folder
    SMTP         aiosmtpd requiring STARTTLS (a second private CA, named by its own CA_BUNDLE) and a login
    ct-sync      intake and console bound beyond loopback with their tokens, the worker with its metrics, and the
                 scheduler running a group (poll, then a segment export) on a one-time schedule

The story: members seeded in Siebel (two with data CrowdTwist refuses, one of another program) → `check` → enrolls
posted to the intake → `poll` → the worker syncs them (read back through Siebel's REST API) → poison messages
dead-lettered, listed, replayed and discarded → a member's data fixed, `resubmit --status "Data Error"` → `segment
export` over SFTP → `privacy access` and `privacy delete --wait` → the console: login with its token, a replay and a
resubmit through its forms → the scheduler's group run (`jobs runs`) → the failure email and the job's email at the
SMTP server. Then the coverage: every setting of the production sections is set (and reached every long-running
process) or listed below as left at its default, with the reason; a setting given its default value says why too.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import trustme
from kombu.connection import Connection

from config import load_settings
from config.settings import (
    AlertsSettings,
    BrokerSettings,
    ConsoleSettings,
    CrowdTwistSettings,
    IntakeSettings,
    LedgerSettings,
    MetricsSettings,
    SftpSettings,
    SiebelSettings,
)
from sandbox.crowdtwist import SandboxState
from sandbox.crowdtwist.answers import Answer
from sandbox.servers import SandboxServer, SiebelEmulatorServer
from sandbox.siebel.emulator import SiebelEmulator
from siebel_adapter import searchspec
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.ledger.runs import RunLedger
from sync_worker.queue.topology import QueueTopology
from tests.alerts.conftest import SmtpServer, free_port
from tests.builders import siebel_member
from tests.integration.helpers import eventually
from tests.integration.worker_process import CT_SYNC
from tests.redis_server import PrivateRedis
from tests.sshd import SshServer, keygen, require_sshd
from tests.unavailable import unavailable

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq, pytest.mark.postgres]

# Secrets: each must never appear in a log line or a command's output.
API_KEY = "ct-prod-key-7f3a9c21e4b8d605"
SIEBEL_PASSWORD = "siebel-pw-Qm4r8"
SMTP_PASSWORD = "smtp-pw-Lk29x"
KEY_PASSPHRASE = "sftp-passphrase-Zt83"
INTAKE_TOKEN = "intake-token-3b9e1d7a5c"
CONSOLE_TOKEN = "console-token-8c2f6a0e4d"
SECRETS = (API_KEY, SIEBEL_PASSWORD, SMTP_PASSWORD, KEY_PASSPHRASE, INTAKE_TOKEN, CONSOLE_TOKEN)

PROGRAM = "1-ACME-CT"
BUSINESS_OBJECT, BUSINESS_COMPONENT = "ACME Loyalty", "ACME LOY Member"
FIELDS = {  # the customer's names for the fields ct-sync writes back
    "status_field": "ACME CT Status",
    "error_field": "ACME CT Error",
    "ct_user_id_field": "ACME CT User",
    "sync_time_field": "ACME CT Synced At",
}
STATUS, ERROR, CT_USER = FIELDS["status_field"], FIELDS["error_field"], FIELDS["ct_user_id_field"]
EMAIL_DOMAIN = "members.acme.example"
TAKEN_EMAIL = "already.there@acme.example"  # a CrowdTwist user from before ct-sync holds it

GOLD_1, GOLD_2, SILVER, NO_LAST_NAME, TAKEN, OTHER_PROGRAM, GOLD_LEAVER = (f"296-900000{n}" for n in range(1, 8))
SYNCED = (GOLD_1, GOLD_2, SILVER, GOLD_LEAVER)
REFUSED = (NO_LAST_NAME, TAKEN)

# The sections a production deployment configures (docs/operations.md, section 1), and the settings among them this
# story leaves at their defaults on purpose. Every other setting of these sections must be set by `production_settings`.
PRODUCTION_SECTIONS = {
    "broker": BrokerSettings,
    "ledger": LedgerSettings,
    "crowdtwist": CrowdTwistSettings,
    "siebel": SiebelSettings,
    "sftp": SftpSettings,
    "alerts": AlertsSettings,
    "intake": IntakeSettings,
    "console": ConsoleSettings,
    "metrics": MetricsSettings,
}
LEFT_AT_DEFAULT = {
    "CTSYNC_SIEBEL__BEARER_TOKEN": "the alternative to Basic auth: this deployment logs in with a username and "
    "password (set), and a bearer token would replace them, not add to them",
    "CTSYNC_SIEBEL__SQLITE_PATH": "the file of the SQLite stand-in; with backend rest nothing reads it",
}
SET_TO_THE_DEFAULT_VALUE = {
    "CTSYNC_ALERTS__NOTIFY": "`failures` is what production wants (`all` mails counts of successes too); given "
    "explicitly, as a production config file does",
}


def production_settings(
    *,
    data_dir: Path,
    config: Path,
    rabbitmq_url: str,
    queue: str,
    ledger_url: str,
    redis_url: str,
    crowdtwist_url: str,
    siebel_url: str,
    https_ca: Path,
    mail_ca: Path,
    sshd: SshServer,
    sftp_key: Path,
    smtp_port: int,
    beyond_loopback: str,
    ports: dict[str, int],
) -> dict[str, str]:
    """The environment file of this deployment: one line per setting, as `/etc/ct-sync/secrets.env` and the config
    file would hold them."""
    return {
        "CTSYNC_CONFIG": str(config),
        "CTSYNC_DATA_DIR": str(data_dir),
        # broker
        "CTSYNC_BROKER__URL": rabbitmq_url,
        "CTSYNC_BROKER__QUEUE": queue,
        "CTSYNC_BROKER__HEARTBEAT": "15",
        "CTSYNC_BROKER__CONFIRM_TIMEOUT": "10s",
        "CTSYNC_BROKER__QUEUE_TYPE": "quorum",
        "CTSYNC_BROKER__DELIVERY_LIMIT": "3",
        # ledger
        "CTSYNC_LEDGER__URL": ledger_url,
        "CTSYNC_LEDGER__RETENTION": "30d",
        # crowdtwist
        "CTSYNC_CROWDTWIST__BASE_URL": crowdtwist_url,
        "CTSYNC_CROWDTWIST__POS_BASE_URL": crowdtwist_url,
        "CTSYNC_CROWDTWIST__API_KEY": API_KEY,
        "CTSYNC_CROWDTWIST__AUTH": "header",
        "CTSYNC_CROWDTWIST__REQUESTS_PER_MINUTE": "12000",
        "CTSYNC_CROWDTWIST__BUDGET_SHARE": "0.5",
        "CTSYNC_CROWDTWIST__BUDGET_URL": redis_url,
        "CTSYNC_CROWDTWIST__BUDGET_KEY": f"{queue}:budget",
        "CTSYNC_CROWDTWIST__FALLBACK_PROCESSES": "2",
        "CTSYNC_CROWDTWIST__TIMEOUT": "20s",
        "CTSYNC_CROWDTWIST__CONNECT_TIMEOUT": "3s",
        "CTSYNC_CROWDTWIST__RETRY_ATTEMPTS": "3",
        "CTSYNC_CROWDTWIST__RETRY_MAX_TIME": "15s",
        "CTSYNC_CROWDTWIST__DELETION_STATUS_PATH": "/v2/user_deletion/{ct_user_id}",  # the other published form
        "CTSYNC_CROWDTWIST__CA_BUNDLE": str(https_ca),
        # siebel
        "CTSYNC_SIEBEL__BACKEND": "rest",
        "CTSYNC_SIEBEL__BASE_URL": siebel_url,
        "CTSYNC_SIEBEL__USERNAME": "CTSYNC",
        "CTSYNC_SIEBEL__PASSWORD": SIEBEL_PASSWORD,
        "CTSYNC_SIEBEL__BUSINESS_OBJECT": BUSINESS_OBJECT,
        "CTSYNC_SIEBEL__BUSINESS_COMPONENT": BUSINESS_COMPONENT,
        "CTSYNC_SIEBEL__STATUS_FIELD": FIELDS["status_field"],
        "CTSYNC_SIEBEL__ERROR_FIELD": FIELDS["error_field"],
        "CTSYNC_SIEBEL__CT_USER_ID_FIELD": FIELDS["ct_user_id_field"],
        "CTSYNC_SIEBEL__SYNC_TIME_FIELD": FIELDS["sync_time_field"],
        "CTSYNC_SIEBEL__ERROR_FIELD_LENGTH": "120",
        "CTSYNC_SIEBEL__PROGRAM_ID": PROGRAM,
        "CTSYNC_SIEBEL__PAGE_SIZE": "3",  # pages, even with a handful of members
        "CTSYNC_SIEBEL__TIMEOUT": "20s",
        "CTSYNC_SIEBEL__CA_BUNDLE": str(https_ca),
        "CTSYNC_SIEBEL__POLL_OVERLAP": "1m",
        # defaults (the OIC lookup)
        "CTSYNC_DEFAULTS__EMAIL_DOMAIN": EMAIL_DOMAIN,
        "CTSYNC_DEFAULTS__POSTAL_CODE": "10001",
        "CTSYNC_DEFAULTS__COUNTRY_CODE": "US",
        # sftp
        "CTSYNC_SFTP__HOST": "127.0.0.1",
        "CTSYNC_SFTP__PORT": str(sshd.port),
        "CTSYNC_SFTP__USERNAME": sshd.username,
        "CTSYNC_SFTP__KEY_FILE": str(sftp_key),
        "CTSYNC_SFTP__KEY_PASSPHRASE": KEY_PASSPHRASE,
        "CTSYNC_SFTP__KNOWN_HOSTS": str(sshd.known_hosts),
        "CTSYNC_SFTP__CIPHERS": "aes256-ctr,aes128-ctr",
        "CTSYNC_SFTP__SEGMENT_DIRECTORY": "segments",
        "CTSYNC_SFTP__TIMEOUT": "15s",
        "CTSYNC_SFTP__ATTEMPTS": "3",
        "CTSYNC_SFTP__RETRY_WAIT": "500ms",
        "CTSYNC_SFTP__MAX_FILE_BYTES": str(64 * 1024 * 1024),
        # alerts
        "CTSYNC_ALERTS__TO": "loyalty-admins@acme.example,integration@acme.example",
        "CTSYNC_ALERTS__SENDER": "ct-sync@acme.example",
        "CTSYNC_ALERTS__SMTP_HOST": "127.0.0.1",
        "CTSYNC_ALERTS__SMTP_PORT": str(smtp_port),
        "CTSYNC_ALERTS__SMTP_USERNAME": "ct-sync",
        "CTSYNC_ALERTS__SMTP_PASSWORD": SMTP_PASSWORD,
        "CTSYNC_ALERTS__STARTTLS": "true",
        "CTSYNC_ALERTS__CA_BUNDLE": str(mail_ca),
        "CTSYNC_ALERTS__NOTIFY": "failures",
        "CTSYNC_ALERTS__DIGEST_INTERVAL": "5m",
        # intake
        "CTSYNC_INTAKE__HOST": beyond_loopback,
        "CTSYNC_INTAKE__PORT": str(ports["intake"]),
        "CTSYNC_INTAKE__TOKEN": INTAKE_TOKEN,
        "CTSYNC_INTAKE__MAX_BODY_BYTES": "65536",
        # console
        "CTSYNC_CONSOLE__HOST": beyond_loopback,
        "CTSYNC_CONSOLE__PORT": str(ports["console"]),
        "CTSYNC_CONSOLE__TOKEN": CONSOLE_TOKEN,
        "CTSYNC_CONSOLE__SESSION_LIFETIME": "1h",
        # worker
        "CTSYNC_WORKER__CONCURRENCY": "8",
        "CTSYNC_WORKER__PREFETCH": "16",
        "CTSYNC_WORKER__RETRY_BUDGET": "5m",
        # metrics
        "CTSYNC_METRICS__HOST": beyond_loopback,
        "CTSYNC_METRICS__PORT": str(ports["metrics"]),
        # log, scheduler, privacy
        "CTSYNC_LOG__LEVEL": "INFO",
        "CTSYNC_LOG__FORMAT": "json",
        "CTSYNC_SCHEDULER__LEASE": "6s",
        "CTSYNC_PRIVACY__POLL_INTERVAL": "100ms",
    }


def beyond_loopback_address() -> str:
    """An address of this machine that is not loopback, where the intake and console listen as in production
    (binding there needs their tokens); 0.0.0.0 when the machine has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent; the kernel picks the outgoing address
            address = str(probe.getsockname()[0])
        except OSError:
            return "0.0.0.0"
    return "0.0.0.0" if ipaddress.ip_address(address).is_loopback else address


class KeyWatchingState(SandboxState):
    """The CrowdTwist sandbox, counting how the API key came with each call."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.key_in_query = 0
        self.key_in_header = 0

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Answer:
        self.key_in_query += "api_key" in query
        self.key_in_header += "x-ct-authorization" in headers
        return super().handle(method, path, query, headers, body)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def lines(self, event: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if f'"event": "{event}"' in line:
                found.append(json.loads(line))
        return found

    def environment(self) -> dict[str, str]:
        """What the running process was started with, as the kernel keeps it."""
        raw = Path(f"/proc/{self.popen.pid}/environ").read_bytes()
        pairs = (entry.split(b"=", 1) for entry in raw.split(b"\0") if b"=" in entry)
        return {key.decode(): value.decode(errors="replace") for key, value in pairs}

    def stop(self) -> int:
        """SIGTERM, as systemd stops a unit; its exit code."""
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=60)


@dataclass
class Stack:
    env: dict[str, str]
    settings: dict[str, str]
    root: Path
    reach: str  # where this test reaches the intake, console and metrics
    topology: QueueTopology
    rabbitmq_url: str
    crowdtwist: KeyWatchingState
    siebel: SiebelEmulatorServer
    siebel_tls: ssl.SSLContext
    sshd: SshServer
    smtp: SmtpServer
    redis_url: str
    processes: list[Process] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def ct_sync(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([CT_SYNC, *args], env=self.env, capture_output=True, text=True, timeout=180)
        self.outputs.append(result.stdout + result.stderr)
        assert result.returncode == expect, (
            f"ct-sync {' '.join(args)} exited {result.returncode}, not {expect}:\n{result.stdout}\n{result.stderr}"
        )
        return result

    def start(self, command: str) -> Process:
        log = self.root / f"{command}.log"
        with log.open("wb") as handle:  # the child keeps its own descriptor
            popen = subprocess.Popen([CT_SYNC, command], env=self.env, stdout=handle, stderr=subprocess.STDOUT)
        process = Process(command, popen, log)
        self.processes.append(process)
        return process

    def kill_leftovers(self) -> None:
        """After a failure: no process outlives the test; the end of each one's log is shown."""
        for process in self.processes:
            if process.popen.poll() is None:
                process.popen.kill()
                process.popen.wait()
                print(f"{process.name} log, last 30 lines:", *process.log.read_text().splitlines()[-30:], sep="\n")

    def url(self, port_setting: str) -> str:
        return f"http://{self.reach}:{self.settings[port_setting]}"

    def member(self, number: str) -> dict[str, Any]:
        """The member as Siebel's REST API answers it now (the business object and component of the settings)."""
        with self._siebel() as siebel:
            response = siebel.get(
                f"/data/{BUSINESS_OBJECT}/{BUSINESS_COMPONENT}",
                params={"searchspec": searchspec.field_is("Member Number", number)},
            )
        response.raise_for_status()
        (item,) = response.json()["items"]
        return dict(item)

    def edit_member(self, row_id: str, changes: dict[str, str]) -> None:
        """A Siebel administrator's correction, through the REST API (Siebel moves `Updated`)."""
        with self._siebel() as siebel:
            siebel.put(f"/data/{BUSINESS_OBJECT}/{BUSINESS_COMPONENT}/{row_id}", json=changes).raise_for_status()

    def status_of(self, number: str) -> str | None:
        value = self.member(number).get(STATUS)
        return str(value) if value else None

    def _siebel(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.siebel.base_url, auth=("CTSYNC", SIEBEL_PASSWORD), verify=self.siebel_tls, timeout=30
        )

    def depths(self) -> dict[str, int]:
        with Connection(self.rabbitmq_url) as connection:
            depths = self.topology.depths(connection)
        return {
            name.rsplit(".", 1)[-1] if name != self.topology.work_queue.name else "work": n
            for name, n in depths.items()
        }

    def publish_raw(self, body: bytes) -> None:
        """A message as something other than ct-sync might put on the work queue."""
        with Connection(self.rabbitmq_url) as connection:
            connection.Producer(exchange=self.topology.exchange).publish(
                body, routing_key="work", content_type="application/json", content_encoding="utf-8",
                delivery_mode=2,
            )  # fmt: skip

    def history(self, number: str) -> list[dict[str, Any]]:
        result = subprocess.run(
            [CT_SYNC, "status", "--member", number, "--json"], env=self.env, capture_output=True, text=True, timeout=60
        )
        return list(json.loads(result.stdout)["attempts"]) if result.returncode == 0 else []


def _tls_server_files(authority: trustme.CA, folder: Path, name: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 from `authority` (one PEM with key and chain), and the authority's own PEM."""
    server, ca = folder / f"{name}-server.pem", folder / f"{name}-ca.pem"
    authority.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server))
    authority.cert_pem.write_to_path(str(ca))
    return server, ca


def _rabbitmqctl() -> str:
    found = shutil.which("rabbitmqctl") or shutil.which("rabbitmqctl", path="/usr/sbin:/usr/lib/rabbitmq/bin")
    if found is None:
        unavailable("rabbitmqctl is not installed: the test reads the queues' type from RabbitMQ with it")
    return found


def _queues_as_rabbitmq_has_them(names: set[str]) -> dict[str, dict[str, Any]]:
    listed = subprocess.run(
        [_rabbitmqctl(), "-q", "list_queues", "name", "type", "arguments", "--formatter", "json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    queues = {queue["name"]: queue for queue in json.loads(listed.stdout) if queue["name"] in names}
    for queue in queues.values():  # [name, AMQP type, value] triples
        queue["arguments"] = {name: value for name, _, value in queue["arguments"]}
    return queues


@pytest.fixture
def stack(
    tmp_path: Path, rabbitmq_url: str, postgres_database: str, private_redis: PrivateRedis, unique_name: str
) -> Iterator[Stack]:
    require_sshd()
    _rabbitmqctl()  # the queues' type is read with it
    # Two private CAs, each trusted only where its setting names it: CrowdTwist's and Siebel's, the mail server's.
    https_pem, https_ca = _tls_server_files(trustme.CA(), tmp_path, "https")
    mail_authority = trustme.CA()
    mail_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    mail_authority.issue_cert("127.0.0.1").configure_cert(mail_context)
    mail_ca = tmp_path / "mail-ca.pem"
    mail_authority.cert_pem.write_to_path(str(mail_ca))
    tls = {"ssl_certfile": str(https_pem), "ssl_keyfile": str(https_pem)}

    crowdtwist_state = KeyWatchingState(api_key=API_KEY)
    crowdtwist_state.set_rules(deletion_step_seconds=0.05)
    store = SqliteMemberStore(tmp_path / "siebel.sqlite", SiebelSettings(program_id=PROGRAM, **FIELDS))
    emulator = SiebelEmulator(
        store, username="CTSYNC", password=SIEBEL_PASSWORD,
        business_object=BUSINESS_OBJECT, business_component=BUSINESS_COMPONENT,
    )  # fmt: skip
    with contextlib.ExitStack() as cleanup:  # undone in reverse: processes, queues, SMTP, sshd, the emulators
        crowdtwist = cleanup.enter_context(SandboxServer(crowdtwist_state, **tls))
        siebel = cleanup.enter_context(SiebelEmulatorServer(emulator, **tls))
        sshd = SshServer(tmp_path / "sshd")
        cleanup.callback(sshd.stop)
        sshd.start()
        sftp_key = tmp_path / "crowdtwist_sftp"
        keygen(sftp_key, passphrase=KEY_PASSPHRASE)
        sshd.authorize(sftp_key.with_suffix(".pub"))
        (sshd.upload_dir / "segments").mkdir()
        smtp = SmtpServer(free_port(), tls=mail_context, password=SMTP_PASSWORD).start()
        cleanup.callback(smtp.stop)
        topology = QueueTopology.named(unique_name, queue_type="quorum", delivery_limit=3)
        cleanup.callback(_delete_queues, rabbitmq_url, topology)
        address = beyond_loopback_address()
        settings = production_settings(
            data_dir=tmp_path / "data", config=tmp_path / "ct-sync.toml", rabbitmq_url=rabbitmq_url,
            queue=unique_name, ledger_url=postgres_database, redis_url=private_redis.url,
            crowdtwist_url=crowdtwist.url, siebel_url=siebel.base_url, https_ca=https_ca, mail_ca=mail_ca, sshd=sshd,
            sftp_key=sftp_key, smtp_port=smtp.port, beyond_loopback=address,
            ports={name: free_port() for name in ("intake", "console", "metrics")},
        )  # fmt: skip
        stack = Stack(
            env={
                **{key: value for key, value in os.environ.items() if not key.startswith(("CTSYNC_", "SSL_CERT"))},
                "COLUMNS": "200",
                **settings,
            },
            settings=settings,
            root=tmp_path,
            reach="127.0.0.1" if address == "0.0.0.0" else address,
            topology=topology,
            rabbitmq_url=rabbitmq_url,
            crowdtwist=crowdtwist_state,
            siebel=siebel,
            siebel_tls=ssl.create_default_context(cafile=str(https_ca)),
            sshd=sshd,
            smtp=smtp,
            redis_url=private_redis.url,
        )
        cleanup.callback(stack.kill_leftovers)
        yield stack


def _delete_queues(rabbitmq_url: str, topology: QueueTopology) -> None:
    with Connection(rabbitmq_url) as connection:
        topology.delete(connection)


def write_jobs(config: Path, *, once: datetime) -> None:
    """The jobs file: a nightly group, a poll then a segment export, due once at `once` (a one-time schedule)."""
    config.write_text(
        f"""
[jobs.nightly-poll]
kind = "poll"

[jobs.gold-nightly]
kind = "segment-export"
segment = "GoldNightly"
where = ["Tier=Gold", "Status=Active"]
identifier = "third_party_id"
ready = "empty"

[groups.nightly]
jobs = ["nightly-poll", "gold-nightly"]
schedule = "{once.strftime("%Y-%m-%dT%H:%M:%SZ")}"
notify = "each"
notify_to = "crm-team@acme.example"
"""
    )


def seed_members(stack: Stack) -> dict[str, str]:
    """Siebel's members, as the customer's program holds them; returns their row ids."""
    rows = {}
    for n, (number, fields) in enumerate(
        {
            GOLD_1: {"Tier": "Gold"},
            GOLD_2: {"Tier": "Gold", "First Name": "Siobhán", "Last Name": "O'Brien"},
            SILVER: {"Tier": "Silver", "Email Address": "", "Primary Postal Code": ""},  # the OIC defaults fill in
            NO_LAST_NAME: {"Tier": "Gold", "Last Name": ""},  # refused by CrowdTwist's rules, before any call
            TAKEN: {"Tier": "Silver", "Email Address": TAKEN_EMAIL},  # refused by CrowdTwist itself
            OTHER_PROGRAM: {"Program Id": "1-OTHER"},
            GOLD_LEAVER: {"Tier": "Gold"},  # asks to be deleted
        }.items(),
        start=1,
    ):
        document = siebel_member(
            **{"Id": f"1-ACME{n}", "Member Number": number, "Program Id": PROGRAM,
               "Email Address": f"member.{n}@acme.example", **fields}
        )  # fmt: skip
        rows[number] = stack.siebel.emulator.store.upsert_member(document)
    return rows


def test_a_production_deployment_runs_the_whole_story(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    env = stack.settings
    # A CrowdTwist user from before ct-sync holds the email one member has.
    stack.crowdtwist.handle(
        "POST", "/v2/users", {}, {"x-ct-authorization": f"CTApiKey {API_KEY}"},
        json.dumps({"third_party_id": "LEGACY-1", "email_address": TAKEN_EMAIL, "first_name": "Lee",
                    "last_name": "Legacy"}).encode(),
    )  # fmt: skip
    rows = seed_members(stack)
    write_jobs(Path(env["CTSYNC_CONFIG"]), once=datetime.now(UTC).replace(microsecond=0))

    # -- check: every system answers, none by its embedded stand-in --------------------------------------------------
    checked = json.loads(stack.ct_sync("check", "--json").stdout)
    results = {check["system"]: check for check in checked["checks"]}
    assert {system: check["result"] for system, check in results.items()} == dict.fromkeys(
        ("settings", "broker", "siebel", "crowdtwist", "budget", "ledger", "smtp", "sftp"), "ok"
    ), results
    assert results["siebel"]["detail"].startswith("https://")  # where Siebel answered, not the embedded stand-in
    assert results["crowdtwist"]["detail"].startswith("https://")
    assert results["ledger"]["detail"].startswith("postgresql://")
    assert results["smtp"]["detail"] == f"127.0.0.1:{env['CTSYNC_ALERTS__SMTP_PORT']}"
    assert "aes256-ctr" in results["sftp"]["detail"]
    assert results["budget"]["detail"].startswith("redis://")
    refused_data = stack.ct_sync("preview", "--member", NO_LAST_NAME, expect=1).stdout
    assert "Data Error: Last Name" in refused_data
    assert f"{SILVER}@{EMAIL_DOMAIN}" in stack.ct_sync("preview", "--member", SILVER).stdout  # CTSYNC_DEFAULTS__*

    # -- the long-running processes: worker (with metrics), intake and console beyond loopback ------------------------
    worker = stack.start("worker")
    intake = stack.start("intake")
    console = stack.start("console")
    intake_url, console_url, metrics_url = (
        stack.url(f"CTSYNC_{name}__PORT") for name in ("INTAKE", "CONSOLE", "METRICS")
    )
    eventually(lambda: _answers(f"{metrics_url}/readyz"), timeout=60)
    eventually(lambda: _answers(f"{intake_url}/healthz"), timeout=60)
    eventually(lambda: _answers(f"{console_url}/login"), timeout=60)
    (started_line,) = worker.lines("worker_started")
    described = json.dumps(started_line)
    for shown in ("amqp", "https://127.0.0.1", "postgresql", f"127.0.0.1:{env['CTSYNC_ALERTS__SMTP_PORT']}"):
        assert shown in described, (shown, started_line)
    rabbit = _queues_as_rabbitmq_has_them({queue.name for queue in stack.topology.queues})
    assert {name: queue["type"] for name, queue in rabbit.items()} == dict.fromkeys(
        [queue.name for queue in stack.topology.queues], "quorum"
    )
    assert rabbit[stack.topology.work_queue.name]["arguments"]["x-delivery-limit"] == int(
        env["CTSYNC_BROKER__DELIVERY_LIMIT"]
    )

    # -- enrolls posted by Siebel's workflow to the intake, with its bearer token ------------------------------------
    with httpx.Client(base_url=intake_url, timeout=30) as siebel_workflow:
        for number in (GOLD_1, GOLD_2, NO_LAST_NAME):
            document = {k: v for k, v in stack.member(number).items() if k != "Link"}
            answer = siebel_workflow.post(
                "/v1/member-events", json={"event": "enroll", "member": document},
                headers={"Authorization": f"Bearer {INTAKE_TOKEN}"},
            )  # fmt: skip
            assert answer.status_code == 202, answer.text
        refused = siebel_workflow.post("/v1/member-events", json={"event": "enroll", "member": document})
        assert refused.status_code == 401
        too_big = siebel_workflow.post(
            "/v1/member-events", content=b"{" + b" " * 70_000 + b"}",
            headers={"Authorization": f"Bearer {INTAKE_TOKEN}", "Content-Type": "application/json"},
        )  # fmt: skip
        assert too_big.status_code == 413  # CTSYNC_INTAKE__MAX_BODY_BYTES

    # -- poll once: the initial load ---------------------------------------------------------------------------------
    polled = stack.ct_sync("poll").stdout
    # Members written back while the poll pages through Siebel are read again (harmless duplicates): at least 6.
    published = re.search(r"^initial load: read \d+ of 7, published (\d+), skipped 1 ", polled, re.MULTILINE)
    assert published, polled
    assert int(published.group(1)) >= 6, polled
    assert "(run cli-poll.1)" in polled

    # -- the worker syncs them; the outcome read back through Siebel's REST API ------------------------------------
    eventually(lambda: all(stack.status_of(n) == "Synced" for n in SYNCED), timeout=120)
    eventually(lambda: all(stack.status_of(n) == "Data Error" for n in REFUSED), timeout=60)
    assert stack.status_of(OTHER_PROGRAM) is None
    for number in SYNCED:
        assert stack.crowdtwist.users_with_third_party_id(number) == 1
        assert stack.member(number)[CT_USER] == str(stack.crowdtwist.user(number)["id"])  # type: ignore[index]
    assert "Last Name" in stack.member(NO_LAST_NAME)[ERROR]
    assert "Email Address is already taken" in stack.member(TAKEN)[ERROR]
    assert len(stack.member(TAKEN)[ERROR]) <= 120  # CTSYNC_SIEBEL__ERROR_FIELD_LENGTH
    silver = stack.crowdtwist.user(SILVER)
    assert silver is not None
    assert (silver["email_address"], silver["postal_code"]) == (f"{SILVER}@{EMAIL_DOMAIN}", "10001")  # the defaults
    assert stack.crowdtwist.user(GOLD_2)["last_name"] == "O’Brien"  # type: ignore[index]
    assert [a["source"] for a in stack.history(GOLD_1)].count("intake") >= 1
    assert (stack.crowdtwist.key_in_query, stack.crowdtwist.key_in_header > 0) == (0, True)  # AUTH=header
    assert redis.Redis.from_url(stack.redis_url).exists(f"{env['CTSYNC_CROWDTWIST__BUDGET_KEY']}:next-slot")
    metrics = httpx.get(f"{metrics_url}/metrics").text
    assert re.search(r'^ct_sync_outcomes_total\{outcome="Synced"\} [1-9]', metrics, re.MULTILINE), metrics[:2000]
    published_by_hand = stack.ct_sync("publish", "--member", GOLD_2, "--event", "update").stdout
    assert published_by_hand.startswith(f"queued update of {GOLD_2}: event ")
    eventually(lambda: "publish" in [a["source"] for a in stack.history(GOLD_2)], timeout=60)

    # -- dead letters: messages the worker can never process -------------------------------------------------------
    stack.publish_raw(b'{"schema_version": 1, "member_number": "%s"}' % GOLD_2.encode())  # replayed from the CLI
    stack.publish_raw(b"this is not an event")  # discarded from the CLI
    stack.publish_raw(b'{"schema_version": 1, "member_number": "%s"}' % SILVER.encode())  # replayed in the console
    eventually(lambda: stack.depths()["dead"] == 3, timeout=60)
    listed = json.loads(stack.ct_sync("dead-letters", "list", "--json").stdout)
    assert listed["count"] == 3
    letters = {letter["member_number"]: letter for letter in listed["letters"]}
    assert set(letters) == {GOLD_2, None, SILVER}
    assert all(letter["reason"] for letter in letters.values())
    replayed = stack.ct_sync("dead-letters", "replay", letters[GOLD_2]["id"], "--operator", "Ops On-Call").stdout
    assert f"queued {GOLD_2}" in replayed
    discarded = stack.ct_sync("dead-letters", "discard", letters[None]["id"], "--operator", "Ops On-Call").stdout
    assert "discarded" in discarded
    assert json.loads(stack.ct_sync("dead-letters", "list", "--json").stdout)["count"] == 1

    # -- a member's data fixed in Siebel, then every Data Error resubmitted -----------------------------------------
    stack.edit_member(rows[NO_LAST_NAME], {"Last Name": "Fixed"})
    resubmitted = json.loads(stack.ct_sync("resubmit", "--status", "Data Error", "--json").stdout)
    assert sorted(member["member_number"] for member in resubmitted["members"]) == sorted(REFUSED)
    eventually(lambda: stack.status_of(NO_LAST_NAME) == "Synced", timeout=60)
    eventually(lambda: "resubmit" in [a["source"] for a in stack.history(TAKEN)], timeout=60)
    assert stack.status_of(TAKEN) == "Data Error"  # its data did not change: still refused

    # -- a segment file over SFTP ----------------------------------------------------------------------------------
    exported = stack.ct_sync("segment", "export", "Gold", "--where", "Tier=Gold", "--ready", "count").stdout
    assert "(run cli-segment-Gold.1)" in exported
    segments = stack.sshd.upload_dir / "segments"
    (gold_file,) = segments.glob("Gold_*.csv")
    gold_ids = {str(stack.crowdtwist.user(n)["id"]) for n in (GOLD_1, GOLD_2, NO_LAST_NAME, GOLD_LEAVER)}  # type: ignore[index]
    assert gold_file.read_text().splitlines()[0] == "CTUserID"
    assert set(gold_file.read_text().splitlines()[1:]) == gold_ids
    assert gold_file.with_suffix(".ready").read_text().strip() == "4"

    # -- privacy: an access request and a deletion ------------------------------------------------------------------
    export = stack.root / "dsr-1.json"
    stack.ct_sync("privacy", "access", "--member", GOLD_1, "--out", str(export), "--reference", "DSR-1")
    assert stat.S_IMODE(export.stat().st_mode) == 0o600
    document = json.loads(export.read_text())
    assert document["profile"]["third_party_id"] == GOLD_1
    assert document["not_available"] == []  # purchases too, from CTSYNC_CROWDTWIST__POS_BASE_URL
    deleted = stack.ct_sync("privacy", "delete", "--member", GOLD_LEAVER, "--wait", "--reference", "DSR-2").stdout
    assert deleted.strip().splitlines()[-1].endswith(": Deletion_completed"), deleted
    assert stack.crowdtwist.user(GOLD_LEAVER) is None
    (request,) = json.loads(stack.ct_sync("privacy", "status", "PR-2", "--json").stdout)
    assert (request["status"], request["reference"]) == ("Deletion_completed", "DSR-2")

    # -- the console, beyond loopback: log in with the token, act through its forms ---------------------------------
    with httpx.Client(base_url=console_url, headers={"Accept": "text/html"}, timeout=30) as browser:
        assert browser.get("/").status_code == 303  # to the login page
        login = browser.post(
            "/login",
            data={"csrf_token": _csrf(browser.get("/login").text), "operator": "Ada Admin", "token": CONSOLE_TOKEN},
        )
        assert login.status_code == 303, login.text
        assert "max-age=3600" in login.headers["set-cookie"].lower()  # CTSYNC_CONSOLE__SESSION_LIFETIME
        letter = letters[SILVER]["id"]
        forged = browser.post("/dead-letters/replay", data={"id": letter})
        assert forged.status_code == 403  # no CSRF token: nothing done
        confirm = browser.get("/dead-letters/replay", params={"id": letter})
        done = browser.post("/dead-letters/replay", data={"csrf_token": _csrf(confirm.text), "id": letter})
        assert done.status_code == 303, done.text
        confirm = browser.get("/member/resubmit", params={"number": GOLD_1})
        done = browser.post("/member/resubmit", data={"csrf_token": _csrf(confirm.text), "number": GOLD_1})
        assert done.status_code == 303, done.text
        eventually(lambda: stack.depths() == {"work": 0, "delay": 0, "dead": 0}, timeout=60)
        eventually(lambda: [a["source"] for a in stack.history(GOLD_1)].count("resubmit") == 1, timeout=60)
        silver_page = browser.get("/member", params={"number": SILVER}).text
        gold_page = browser.get("/member", params={"number": GOLD_2}).text
    assert "Ada Admin" in silver_page
    assert "Ops On-Call" in gold_page

    # -- the scheduler runs the nightly group on its one-time schedule ----------------------------------------------
    # This deployment has known the group since before its time came: its schedule mark is older than the time.
    runs = RunLedger(env["CTSYNC_LEDGER__URL"])
    try:
        runs.advance_schedule("nightly", expected=None, to=datetime.now(UTC) - timedelta(hours=1))
    finally:
        runs.close()
    scheduler = stack.start("scheduler")
    eventually(lambda: _group_finished(stack), timeout=120)
    runs_listed = {run["run_id"]: run for run in json.loads(stack.ct_sync("jobs", "runs", "--json").stdout)}
    assert runs_listed["nightly.1"]["status"] == "Success", runs_listed
    assert runs_listed["nightly.1"]["trigger"] == "schedule"
    for member_run in ("nightly-poll.1", "gold-nightly.1"):
        assert (runs_listed[member_run]["status"], runs_listed[member_run]["group_run_id"]) == ("Success", "nightly.1")
    (nightly_file,) = segments.glob("GoldNightly_*.csv")
    header, *members = nightly_file.read_text().splitlines()
    assert (header, sorted(members)) == ("third_party_id", [GOLD_1, GOLD_2, NO_LAST_NAME])  # not the deleted one
    assert nightly_file.with_suffix(".ready").read_bytes() == b""
    assert "deleted on a privacy request" in stack.ct_sync("jobs", "log", "gold-nightly.1").stdout
    listed_jobs = {job["name"]: job for job in json.loads(stack.ct_sync("jobs", "list", "--json").stdout)}
    assert listed_jobs["nightly"]["previous_run"]["run_id"] == "nightly.1"
    assert listed_jobs["nightly"]["next_run"] is None  # a one-time schedule, done
    eventually(lambda: any("nightly.1: Success" in subject for subject in stack.smtp.inbox.subjects), timeout=60)

    # -- the emails, through STARTTLS and a login -----------------------------------------------------------------
    failure_mails = [m for m in stack.smtp.inbox.messages if "not synced" in str(m["Subject"])]
    assert failure_mails, stack.smtp.inbox.subjects
    # The first failure is mailed at once (later ones wait for the digest): it names a refused member.
    first_failure = failure_mails[0].get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert any(f"{number}  Data Error" in first_failure for number in REFUSED), first_failure
    assert failure_mails[0]["To"] == "loyalty-admins@acme.example, integration@acme.example"
    assert failure_mails[0]["From"] == "ct-sync@acme.example"
    (job_mail,) = [m for m in stack.smtp.inbox.messages if "nightly.1" in str(m["Subject"])]
    assert job_mail["To"] == "crm-team@acme.example"
    assert set(stack.smtp.inbox.sessions) == {(True, True)}

    # -- the overview agrees; every production setting reached every long-running process ---------------------------
    overview = json.loads(stack.ct_sync("status", "--json").stdout)
    assert overview["dead_letters"] == 0
    states = {state: count for state, count in overview["members_by_state"].items() if count}
    assert states == {"Synced": 4, "Data Error": 2}, overview["members_by_state"]
    long_running = [worker, intake, console, scheduler]
    environments = [process.environment() for process in long_running]
    for process in long_running:
        assert process.stop() == 0, process.name
    assert_every_production_setting_is_covered(env, environments, monkeypatch)

    # -- nothing fell back to an embedded default; no secret in any log or output -------------------------------------
    data_dir = Path(env["CTSYNC_DATA_DIR"])
    for embedded in ("ledger.sqlite", "queue.sqlite", "siebel.sqlite", "outbox", "sftp"):
        assert not (data_dir / embedded).exists(), f"{embedded} was created: something used its embedded default"
    texts = [process.log.read_text(errors="replace") for process in stack.processes] + stack.outputs
    for secret in SECRETS:
        assert not any(secret in text for text in texts), "a secret reached a log line or a command's output"
    print(f"production profile: the whole story in {time.monotonic() - started:.1f} s")


def assert_every_production_setting_is_covered(
    given: dict[str, str], environments: list[dict[str, str]], patch: pytest.MonkeyPatch
) -> None:
    """The coverage table (`given`, from `production_settings`), checked: each setting of the production sections is
    in it, and every long-running process got it with this value; or it is in LEFT_AT_DEFAULT with a reason. A
    setting given its default value is in SET_TO_THE_DEFAULT_VALUE with a reason. A new setting fails this until it
    is placed."""
    every = {
        f"CTSYNC_{section.upper()}__{name.upper()}": (section, name)
        for section, model in PRODUCTION_SECTIONS.items()
        for name in model.model_fields
    }
    set_here = {name for name in every if name in given}
    assert not set_here & set(LEFT_AT_DEFAULT), (
        f"listed as left at its default, but set: {set_here & set(LEFT_AT_DEFAULT)}"
    )
    neither = sorted(set(every) - set_here - set(LEFT_AT_DEFAULT))
    assert not neither, f"production settings neither set nor listed in LEFT_AT_DEFAULT: {neither}"
    for environment in environments:
        differing = sorted(name for name in set_here if environment.get(name) != given[name])
        assert not differing, f"a long-running process did not get these settings: {differing}"
    with patch.context() as context:
        for name, value in given.items():
            if name.startswith("CTSYNC_"):
                context.setenv(name, value)
        settings = load_settings()
    at_default = set()
    for name, (section, field_name) in every.items():
        info = PRODUCTION_SECTIONS[section].model_fields[field_name]
        if name in set_here and getattr(getattr(settings, section), field_name) == info.get_default(
            call_default_factory=True
        ):
            at_default.add(name)
    assert at_default == set(SET_TO_THE_DEFAULT_VALUE), (
        f"given their default value without a reason in SET_TO_THE_DEFAULT_VALUE: {sorted(at_default)}"
    )


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def _group_finished(stack: Stack) -> bool:
    result = subprocess.run(
        [CT_SYNC, "jobs", "runs", "--job", "nightly", "--json"], env=stack.env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    return result.returncode == 0 and any(run["status"] != "Running" for run in json.loads(result.stdout))
