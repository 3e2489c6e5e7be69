"""The `Settings` tree: every `CTSYNC_*` setting of design.md, validated once at start.

Sources, strongest first: keyword arguments (tests), environment (`CTSYNC_` prefix, `__` between levels),
then the TOML file named by `CTSYNC_CONFIG`. A wrong value raises `SettingsError` whose text is one line
naming the setting, e.g. `CTSYNC_INTAKE__PORT: must be at most 65535 (got 70000)`.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import typing
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from config.durations import Duration
from config.schedules import ScheduleText, parse_schedule

ENV_PREFIX = "CTSYNC_"
CONFIG_FILE_VARIABLE = "CTSYNC_CONFIG"
SANDBOX_CROWDTWIST_URL = "http://127.0.0.1:8765"
SANDBOX_SIEBEL_URL = "http://127.0.0.1:8766/siebel/v1.0"


class SettingsError(Exception):
    """A setting is missing or wrong. `str()` is one line naming the setting; safe to print."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


_VERSION_SEGMENT = re.compile(r"v\d+(\.\d+)*")


def _host_root(value: str) -> str:
    """CrowdTwist's versions are per resource (`/v2/users`, `/v2.1/…`): a base URL holding one doubles it."""
    if any(_VERSION_SEGMENT.fullmatch(segment) for segment in urlsplit(value).path.split("/")):
        raise ValueError("must be the host root, without a version such as /v2 (ct-sync adds it per resource)")
    return value


def _blank_is_none(value: Any) -> Any:
    """An empty secret (`CTSYNC_INTAKE__TOKEN=`) is no secret, never a valid empty one."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _broker_url(value: str) -> str:
    if "://" not in value:
        raise ValueError("must be a broker URL such as amqp://user:pass@host:5672// or sqla+sqlite:///file.db")
    return value


def _redis_url(value: str) -> str:
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must be a redis:// or rediss:// URL")
    return value


def _database_url(value: str) -> str:
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if not scheme.startswith(("sqlite", "postgresql", "postgres")):
        raise ValueError("must be a sqlite:/// or postgresql:// URL")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _addresses(value: Any) -> Any:
    """One address or a list; a comma-separated string in the environment."""
    if isinstance(value, str):
        return [address.strip() for address in value.split(",") if address.strip()]
    return value


def _check_addresses(value: list[str]) -> list[str]:
    for address in value:
        if address.count("@") != 1 or address.startswith("@") or address.endswith("@"):
            raise ValueError(f"{address!r} is not an email address")
    return value


def _listed(value: Any) -> Any:
    """A list option given as one string is a list of one."""
    return [value] if isinstance(value, str) else value


Addresses = Annotated[list[str], NoDecode, BeforeValidator(_addresses), AfterValidator(_check_addresses)]


HttpUrl = Annotated[str, AfterValidator(_http_url)]
HostRoot = Annotated[str, AfterValidator(_http_url), AfterValidator(_host_root)]
Secret = Annotated[SecretStr | None, BeforeValidator(_blank_is_none)]
BrokerUrl = Annotated[str, AfterValidator(_broker_url)]
DatabaseUrl = Annotated[str, AfterValidator(_database_url)]
RedisUrl = Annotated[str, AfterValidator(_redis_url)]
Port = Annotated[int, Field(ge=1, le=65535)]
JOB_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")
RESERVED_JOB_PREFIX = "cli-"  # the jobs of runs started from the command line: `cli-segment-NAME`
NameList = Annotated[list[str], NoDecode]  # comma-separated in the environment


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerSettings(_Section):
    """The queue. No URL means kombu's embedded SQLite transport under the data directory."""

    url: BrokerUrl | None = Field(default=None, description="kombu broker URL; empty: embedded SQLite queue")
    queue: str = Field(default="ct-sync.member-events", description="name of the work queue")
    heartbeat: int = Field(default=30, ge=0, description="AMQP heartbeat in seconds (0 turns it off)")
    confirm_timeout: Duration = Field(
        default=timedelta(seconds=5), description="longest wait for the broker to confirm a published event"
    )
    queue_type: Literal["classic", "quorum"] = Field(
        default="classic", description="`quorum`: replicated RabbitMQ queues for a cluster, with a delivery limit"
    )
    delivery_limit: int = Field(
        default=5, ge=1, description="quorum queues: deliveries of one message before RabbitMQ dead-letters it"
    )

    @model_validator(mode="after")
    def _quorum_needs_rabbitmq(self) -> BrokerSettings:
        if self.queue_type == "quorum" and (self.url is None or not self.url.startswith("amqp")):
            raise ValueError("queue_type: quorum queues need RabbitMQ (an amqp:// url), not the embedded queue")
        return self


class LedgerSettings(_Section):
    """The history of every attempt."""

    url: DatabaseUrl | None = Field(default=None, description="SQLAlchemy URL; empty: SQLite under the data dir")
    retention: Duration = Field(default=timedelta(days=90), description="how long attempt rows are kept")


class CrowdTwistSettings(_Section):
    """CrowdTwist REST v2. The default base URL is the local sandbox (`ct-sync sandbox`)."""

    base_url: HostRoot = Field(
        default=SANDBOX_CROWDTWIST_URL, description="host root, no version (https://sb-api306.crowdtwist.com)"
    )
    pos_base_url: HostRoot | None = Field(
        default=None, description="point-of-sale host root, for purchases; empty: the base URL"
    )
    api_key: Secret = Field(default=None, description="the program's API key")
    auth: Literal["query", "header"] = Field(
        default="query", description="`query`: api_key parameter; `header`: X-CT-Authorization header"
    )
    requests_per_minute: int = Field(default=10_000, gt=0, description="the contract rate limit")
    budget_share: float = Field(default=0.75, gt=0, le=1, description="share of the limit ct-sync may use")
    budget_url: RedisUrl | None = Field(
        default=None, description="redis:// URL: every worker process shares one budget; empty: each paces alone"
    )
    budget_key: str = Field(default="ct-sync:budget", min_length=1, description="prefix of the budget's Redis keys")
    fallback_processes: int = Field(
        default=4, ge=1, description="Redis unreachable: each process paces at the budget divided by this"
    )
    timeout: Duration = Field(default=timedelta(seconds=30), description="read timeout of one call")
    connect_timeout: Duration = Field(default=timedelta(seconds=5), description="connect timeout of one call")
    retry_attempts: int = Field(default=4, ge=1, description="in-process attempts for a transient failure")
    retry_max_time: Duration = Field(
        default=timedelta(seconds=20), description="in-process retry time before the message is redelivered"
    )
    deletion_status_path: str = Field(
        default="/v2/users/delete/{ct_user_id}", description="deletion-status path (the docs show two forms)"
    )
    ca_bundle: Path | None = Field(default=None, description="PEM bundle of a private CA; TLS is always verified")

    @property
    def calls_per_minute(self) -> float:
        """ct-sync's budget: its share of the contract limit."""
        return self.requests_per_minute * self.budget_share


class SiebelSettings(_Section):
    """Where members are read and the outcome written: the SQLite stand-in or Siebel CRM REST."""

    backend: Literal["sqlite", "rest"] = Field(default="sqlite", description="`sqlite` stand-in or Siebel `rest`")
    base_url: HttpUrl | None = Field(default=None, description="up to and including /siebel/v1.0")
    username: str | None = Field(default=None, description="Basic auth user")
    password: Secret = Field(default=None, description="Basic auth password")
    bearer_token: Secret = Field(default=None, description="OAuth bearer token, instead of Basic auth")
    business_object: str = Field(default="LOY Member", min_length=1, description="Siebel business object")
    business_component: str = Field(default="LOY Member", min_length=1, description="Siebel business component")
    status_field: str = Field(default="CT Sync Status", min_length=1, description="field for the sync status")
    error_field: str = Field(default="CT Sync Error", min_length=1, description="field for the error text")
    ct_user_id_field: str = Field(default="CT User Id", min_length=1, description="field for the CrowdTwist id")
    sync_time_field: str = Field(default="CT Sync Time", min_length=1, description="field for the sync time")
    error_field_length: int = Field(
        default=255, ge=20, description="length of the error field: longer texts are cut (Siebel refuses them)"
    )
    program_id: str | None = Field(default=None, description="the program marked for CrowdTwist")
    page_size: int = Field(default=100, ge=1, le=100, description="Siebel PageSize (max 100)")
    timeout: Duration = Field(default=timedelta(seconds=30), description="timeout of one Siebel call")
    ca_bundle: Path | None = Field(default=None, description="PEM bundle of a private CA; TLS is always verified")
    sqlite_path: Path | None = Field(default=None, description="stand-in database; empty: under the data dir")
    poll_overlap: Duration = Field(
        default=timedelta(minutes=2), description="`poll` re-reads this far before its watermark (clock skew)"
    )

    @property
    def write_back_fields(self) -> tuple[str, ...]:
        """The fields ct-sync writes onto a member: the business component has them before any record holds one."""
        return (self.status_field, self.error_field, self.ct_user_id_field, self.sync_time_field)

    @model_validator(mode="after")
    def _rest_needs_a_url(self) -> SiebelSettings:
        if self.backend == "rest" and self.base_url is None:
            raise ValueError("base_url: is required when backend is 'rest'")
        return self


class DefaultsSettings(_Section):
    """The OIC lookup of defaults, applied when a Siebel value is empty."""

    email_domain: str | None = Field(default=None, description="email = Member Number @ this domain")
    postal_code: str | None = Field(default=None, description="for members without a postal code")
    city_id: int | None = Field(default=None, description="CrowdTwist city id for non-US members")
    country_code: str | None = Field(default=None, min_length=2, max_length=2, description="ISO-2")
    gender_ids: dict[str, int] = Field(default={"M": 1, "F": 2}, description="Siebel M/F value → gender_id")


class AlertsSettings(_Section):
    """Failure emails."""

    to: Addresses = Field(default=[], description="recipients, comma-separated; none: .eml files in the outbox")
    sender: str = Field(default="ct-sync@localhost", description="From address")
    smtp_host: str | None = Field(default=None, description="SMTP server; empty: alerts go to the outbox")
    smtp_port: Port = Field(default=25, description="SMTP port (587 with STARTTLS)")
    smtp_username: str | None = Field(default=None, description="SMTP login")
    smtp_password: Secret = Field(default=None, description="SMTP password")
    starttls: bool = Field(default=False, description="upgrade the SMTP connection with STARTTLS")
    ca_bundle: Path | None = Field(
        default=None, description="PEM bundle of a private CA for STARTTLS; TLS is always verified"
    )
    notify: Literal["failures", "all", "none"] = Field(default="failures", description="`failures`, `all` or `none`")
    digest_interval: Duration = Field(default=timedelta(minutes=15), description="at most one digest this often")


class IntakeSettings(_Section):
    """The HTTP endpoint Siebel's workflow posts member events to."""

    host: str = Field(default="127.0.0.1", description="interface the intake binds")
    port: Port = Field(default=8080, description="intake port")
    token: Secret = Field(default=None, description="bearer token; required beyond loopback (empty: none)")
    max_body_bytes: int = Field(default=1_048_576, gt=0, description="largest request body accepted")

    @model_validator(mode="after")
    def _token_required_beyond_loopback(self) -> IntakeSettings:
        if self.token is None and not _is_loopback(self.host):
            raise ValueError(f"token: is required when binding beyond loopback (host is {self.host})")
        return self


class ConsoleSettings(_Section):
    """The web console (`ct-sync console`): what administrators used OIC's monitoring pages for."""

    host: str = Field(default="127.0.0.1", description="interface the console binds")
    port: Port = Field(default=8081, description="console port")
    token: SecretStr | None = Field(
        default=None, description="exchanged once for a session on the login page (or sent as a bearer token); "
        "required beyond loopback",
    )  # fmt: skip
    session_lifetime: Duration = Field(default=timedelta(hours=8), description="a login lasts this long")

    @model_validator(mode="after")
    def _token_required_beyond_loopback(self) -> ConsoleSettings:
        if self.token is not None and not self.token.get_secret_value().strip():
            raise ValueError("token: is empty; set a token or leave the setting out")
        if self.token is None and not _is_loopback(self.host):
            raise ValueError(f"token: is required when binding beyond loopback (host is {self.host})")
        return self


class WorkerSettings(_Section):
    """The queue consumer."""

    concurrency: int = Field(
        default=64, ge=1, le=512, description="most syncs in flight at once; fewer, as the budget and latency need"
    )
    prefetch: int = Field(default=64, ge=1, le=65535, description="messages the broker hands over unacked")
    retry_budget: Duration = Field(
        default=timedelta(minutes=10), description="past this a transient failure becomes CT Failure"
    )
    retry_first_delay: Duration = Field(
        default=timedelta(seconds=15), description="first redelivery delay after a transient failure; doubles"
    )
    retry_max_delay: Duration = Field(default=timedelta(minutes=5), description="longest redelivery delay")
    max_hold: Duration = Field(
        default=timedelta(minutes=5),
        description="longest a message stays unacked (RabbitMQ's consumer timeout is 30m): then it is parked",
    )
    siebel_refusals: int = Field(
        default=3, ge=1, description="attempts Siebel may refuse (a 4xx) before the message is dead-lettered"
    )
    max_resubmits: int = Field(default=5, ge=1, description="resubmits of one member before --force is needed")
    breaker_threshold: int = Field(
        default=5, ge=1, description="consecutive CrowdTwist outages that pause syncing (the outage breaker)"
    )
    breaker_max_backoff: Duration = Field(
        default=timedelta(seconds=20),
        description=(
            "longest wait between probes while CrowdTwist is down: syncing resumes within it of CrowdTwist's return "
            "(at least 1s; the default was 5m before issue 29)"
        ),
    )
    auto_resubmit: bool = Field(
        default=True, description="after an outage, resubmit members that ended CT Failure during it"
    )
    outage_alert_after: Duration = Field(
        default=timedelta(minutes=5),
        description="the ledger or Siebel unreachable this long (syncing paused) is alerted; shorter is only logged",
    )

    @field_validator("breaker_max_backoff")
    @classmethod
    def _probes_spaced(cls, value: timedelta) -> timedelta:
        # Probes follow each other without pause below this: CrowdTwist, down, would be called continuously.
        if value < timedelta(seconds=1):
            raise ValueError("must be at least 1s")
        return value


class MetricsSettings(_Section):
    """Prometheus metrics and health endpoints."""

    port: Port | None = Field(default=None, description="Prometheus /metrics port; empty: off")
    host: str = Field(default="127.0.0.1", description="interface the metrics server binds")


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class LogSettings(_Section):
    """The log: readable lines on a terminal, JSON lines otherwise (a file, journald, a log collector)."""

    level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)] = Field(
        default="INFO", description="the least severe level written (`--log-level` wins)"
    )
    format: Literal["auto", "console", "json"] = Field(
        default="auto", description="`auto`: console on a terminal, JSON otherwise (`--log-json/--log-console` win)"
    )


CROWDTWIST_SFTP_CIPHERS = ["aes256-ctr", "aes192-ctr", "aes128-ctr"]
CROWDTWIST_SEGMENT_MAX_BYTES = 128 * 1024 * 1024  # CrowdTwist's limit for one segment file


class SftpSettings(_Section):
    """CrowdTwist's SFTP drop folder, where segment files go. No host: files go to `<data dir>/sftp/` instead."""

    host: str | None = Field(default=None, description="SFTP server; empty: the local folder <data dir>/sftp/")
    port: Port = Field(default=22, description="SFTP port")
    username: str | None = Field(default=None, description="login CrowdTwist gave you")
    key_file: Path | None = Field(default=None, description="private key (key authentication only)")
    key_passphrase: Secret = Field(default=None, description="passphrase of the private key")
    known_hosts: Path | None = Field(
        default=None, description="OpenSSH known_hosts file holding the server's host key (no trust on first use)"
    )
    ciphers: NameList = Field(
        default=CROWDTWIST_SFTP_CIPHERS,
        description="ciphers offered, most preferred first, comma-separated (CrowdTwist: the aes-ctr three)",
    )
    segment_directory: str = Field(default="", description="remote folder for segments, relative to the login one")
    timeout: Duration = Field(default=timedelta(seconds=30), description="connect and read timeout")
    attempts: int = Field(default=4, ge=1, le=20, description="tries of one upload when the connection fails")
    retry_wait: Duration = Field(
        default=timedelta(seconds=2), description="first wait between tries; doubles, with jitter"
    )
    max_file_bytes: int = Field(
        default=CROWDTWIST_SEGMENT_MAX_BYTES,
        gt=0,
        le=CROWDTWIST_SEGMENT_MAX_BYTES,
        description="largest segment file sent (CrowdTwist refuses more than 128 MB)",
    )

    @field_validator("ciphers", mode="before")
    @classmethod
    def _split_ciphers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [cipher.strip() for cipher in value.split(",") if cipher.strip()]
        return value

    @field_validator("ciphers")
    @classmethod
    def _some_cipher(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one cipher")
        return value

    @model_validator(mode="after")
    def _a_host_needs_credentials(self) -> SftpSettings:
        if self.host is None:
            return self
        for name in ("username", "key_file", "known_hosts"):
            if getattr(self, name) is None:
                raise ValueError(f"{name}: is required when host is set")
        return self


class SchedulerSettings(_Section):
    """`ct-sync scheduler`, the process that starts due jobs. Several may run (on several hosts): one leads, by a
    lease in the ledger database, and the others take over when it stops renewing it."""

    lease: Duration = Field(
        default=timedelta(seconds=30), description="a leader that has not renewed its lease for this long is replaced"
    )

    @field_validator("lease")
    @classmethod
    def _lease_long_enough(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=3):
            raise ValueError("must be at least 3s (the leader renews it three times per lease)")
        return value


class PrivacySettings(_Section):
    """Privacy requests (`ct-sync privacy …`): access exports and deletions in CrowdTwist."""

    poll_interval: Duration = Field(
        default=timedelta(seconds=30), description="`privacy delete --wait`: how often CrowdTwist is asked"
    )

    @field_validator("poll_interval")
    @classmethod
    def _poll_interval_positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be more than 0s")
        return value


class ScheduledSettings(_Section):
    """What jobs and groups share (Connect's schedule, activation and notification)."""

    schedule: ScheduleText = Field(
        default=parse_schedule("on-demand"),
        description="`on-demand`, a one-time ISO time (UTC) or a 5-field cron expression (UTC; `L`: last day)",
    )
    active: bool = Field(default=True, description="an inactive job is not scheduled and cannot be run")
    jitter: Duration = Field(
        default=timedelta(0), description="start at a random moment this long after the scheduled time (`15m`)"
    )
    notify: Literal["each", "failed", "none"] = Field(
        default="failed", description="email after each run, only after a failed one, or never"
    )
    notify_to: Addresses = Field(default=[], description="recipients (one or a list); empty: CTSYNC_ALERTS__TO")

    @field_validator("jitter")
    @classmethod
    def _jitter_within_a_day(cls, value: timedelta) -> timedelta:
        if not timedelta(0) <= value <= timedelta(days=1):
            raise ValueError("must be between 0s and 1d")
        return value


class SegmentExportJob(ScheduledSettings):
    """A segment file to CrowdTwist's SFTP folder: `ct-sync segment export`'s options, `_` for `-`."""

    kind: Literal["segment-export"]
    segment: str = Field(description="the segment's NAME (1-50 of A-Z a-z 0-9 _ -)")
    where: Annotated[list[str], BeforeValidator(_listed)] = Field(
        default=[], description='Siebel conditions, `["Tier=Gold", "Status=Active"]` (ANDed)'
    )
    from_file: Path | None = Field(default=None, description="a CSV member list with a `Member Number` column")
    count_file: Path | None = Field(default=None, description="a file holding the member list's number of lines")
    identifier: Literal["ct_user_id", "third_party_id"] = Field(default="ct_user_id", description="the file's column")
    ready: Literal["none", "empty", "count"] = Field(default="none", description="ready file after the data file")
    allow_empty: bool = Field(
        default=False, description="send a file with no member (the header only); without it such a run fails"
    )

    @model_validator(mode="after")
    def _one_source(self) -> SegmentExportJob:
        if bool(self.where) == (self.from_file is not None):
            raise ValueError("where: say which members: `where` conditions or `from_file`, not both or neither")
        if self.count_file is not None and self.from_file is None:
            raise ValueError("count_file: goes with from_file")
        return self


class PollJob(ScheduledSettings):
    """`ct-sync poll` once: members changed in Siebel since the last poll are queued."""

    kind: Literal["poll"]


class ResubmitJob(ScheduledSettings):
    """`ct-sync resubmit --status …`: members whose CT Sync Status is one of `status` are queued again."""

    kind: Literal["resubmit"]
    status: Annotated[
        list[Literal["Synced", "Data Error", "CT Failure", "OIC Failure"]],
        BeforeValidator(_listed),
        Field(min_length=1),
    ] = Field(description='CT Sync Statuses, `["CT Failure"]`')
    limit: int = Field(default=1000, ge=1, description="at most this many members queued per run")


class PrivacyFollowupJob(ScheduledSettings):
    """`ct-sync privacy status` once: every open deletion request is followed at CrowdTwist."""

    kind: Literal["privacy-followup"]


Job = Annotated[SegmentExportJob | PollJob | ResubmitJob | PrivacyFollowupJob, Field(discriminator="kind")]
JOB_MODELS: dict[str, type[ScheduledSettings]] = {
    "segment-export": SegmentExportJob,
    "poll": PollJob,
    "resubmit": ResubmitJob,
    "privacy-followup": PrivacyFollowupJob,
}
JOB_KINDS = tuple(JOB_MODELS)


class GroupSettings(ScheduledSettings):
    """Jobs run in order, stopping at the first that does not succeed."""

    jobs: list[str] = Field(min_length=1, description="the jobs, in order")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    data_dir: Path = Field(default=Path(".ct-sync"), description="where embedded files, outbox and state live")
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    crowdtwist: CrowdTwistSettings = Field(default_factory=CrowdTwistSettings)
    siebel: SiebelSettings = Field(default_factory=SiebelSettings)
    defaults: DefaultsSettings = Field(default_factory=DefaultsSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    sftp: SftpSettings = Field(default_factory=SftpSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    jobs: dict[str, Job] = Field(default={}, description="`[jobs.NAME]` tables of the TOML file")
    groups: dict[str, GroupSettings] = Field(default={}, description="`[groups.NAME]` tables of the TOML file")

    @model_validator(mode="after")
    def _jobs_and_groups_agree(self) -> Settings:
        for table, names in (("jobs", self.jobs), ("groups", self.groups)):
            for name in names:
                if not JOB_NAME.fullmatch(name):
                    raise ValueError(f"[{table}.{name}]: the name must be 1-100 of A-Z a-z 0-9 _ -")
                if name.startswith(RESERVED_JOB_PREFIX):
                    raise ValueError(f"[{table}.{name}]: names starting {RESERVED_JOB_PREFIX!r} are the command line's")
        for name, group in self.groups.items():
            if name in self.jobs:
                raise ValueError(f"[groups.{name}]: a job has the same name (`ct-sync jobs run {name}` is ambiguous)")
            missing = [job for job in group.jobs if job not in self.jobs]
            if missing:
                raise ValueError(f"[groups.{name}] jobs: names a job that is not defined: {missing[0]!r}")
            if len(set(group.jobs)) != len(group.jobs):
                raise ValueError(f"[groups.{name}] jobs: names a job twice")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_VARIABLE)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    # Derived locations: one place decides where embedded files live.
    @property
    def broker_url(self) -> str:
        return self.broker.url or f"sqla+sqlite:///{self.data_dir.resolve() / 'queue.sqlite'}"

    @property
    def ledger_url(self) -> str:
        return self.ledger.url or f"sqlite:///{self.data_dir.resolve() / 'ledger.sqlite'}"

    @property
    def siebel_sqlite_path(self) -> Path:
        return self.siebel.sqlite_path or self.data_dir / "siebel.sqlite"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def drop_folder(self) -> Path:
        """The embedded drop folder used when no SFTP host is set."""
        return self.data_dir / "sftp"

    @property
    def archive_dir(self) -> Path:
        """Copies of the files delivered to CrowdTwist."""
        return self.data_dir / "archive"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from overrides, environment and config file; raise `SettingsError` on the first problem."""
    config_file = os.environ.get(CONFIG_FILE_VARIABLE)
    if config_file and not Path(config_file).is_file():
        raise SettingsError(CONFIG_FILE_VARIABLE, f"no such file: {config_file}")
    unknown = _unknown_variable(os.environ)
    if unknown is not None:
        raise unknown
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise _first_problem(exc) from None
    except ValueError as exc:  # a TOML syntax error surfaces as a ValueError subclass
        raise SettingsError(CONFIG_FILE_VARIABLE, f"cannot read {config_file}: {exc}") from None


def _first_problem(exc: ValidationError) -> SettingsError:
    error = exc.errors(include_url=False)[0]
    location = [str(part) for part in error["loc"]]
    message = error["msg"].removeprefix("Value error, ")
    if message.startswith("[") or location[:1] in (["jobs"], ["groups"]):
        return _job_problem(error, location, message)
    # A model validator names its field in the message ("token: is required ..."); move it into the location.
    field, separator, rest = message.partition(": ")
    if separator and field.isidentifier() and field.islower():
        location.append(field)
        message = rest
    setting = ENV_PREFIX + "__".join(location).upper()
    if error["type"] == "extra_forbidden":
        return SettingsError(setting, f"is not a known setting{_nearest(setting)}")
    shown = error.get("input")
    if shown is not None and not isinstance(shown, dict) and "secret" not in error["type"]:
        secret_named = any(word in setting for word in ("PASSWORD", "TOKEN", "API_KEY"))
        if not secret_named:
            message = f"{message[0].lower()}{message[1:]} (got {shown!r})"
    return SettingsError(setting, message)


def _job_problem(error: Any, location: list[str], message: str) -> SettingsError:
    """A job or group is named as its TOML table, `[jobs.nightly] schedule: …`, the way the user wrote it."""
    if message.startswith("["):  # the cross-checks name the table themselves
        table, _, rest = message.partition("]")
        setting, _, problem = rest.partition(": ")
        return SettingsError(f"{table}]{setting}", problem)
    table, name, *fields = location
    fields = [part for part in fields if part not in JOB_KINDS]  # pydantic puts the kind in the location
    field, separator, rest = message.partition(": ")
    if separator and field.isidentifier() and field.islower() and not fields:
        fields, message = [field], rest
    if error["type"] == "union_tag_invalid":
        fields, message = ["kind"], f"unknown kind {error['input'].get('kind')!r}: one of {', '.join(JOB_KINDS)}"
    elif error["type"] == "union_tag_not_found":
        fields, message = ["kind"], f"is required: one of {', '.join(JOB_KINDS)}"
    elif error["type"] == "extra_forbidden":
        message = "is not an option of this kind of job" if table == "jobs" else "is not an option of a group"
    elif error["type"] == "missing":
        message = "is required"
    elif error["type"] != "value_error" and not isinstance(error.get("input"), dict):
        message = f"{message[0].lower()}{message[1:]} (got {error.get('input')!r})"
    label = f"[{table}.{name}]" + (f" {'.'.join(fields)}" if fields else "")
    return SettingsError(label, message)


def _unknown_variable(environ: Mapping[str, str]) -> SettingsError | None:
    """pydantic-settings ignores a `CTSYNC…` variable that names no setting (`CTSYNC_BROKER_URL`, one `_`), and the
    setting it was meant for silently keeps its default: refuse it instead, naming the nearest real one."""
    names, open_prefixes = _variable_names(Settings, ENV_PREFIX)
    for variable in sorted(environ):
        name = variable.upper()  # the names are read case-insensitively
        if name.startswith(ENV_PREFIX.rstrip("_")) and name not in names and not name.startswith(open_prefixes):
            return SettingsError(variable, f"is not a setting{_nearest(name)}")
    return None


def _nearest(name: str) -> str:
    names, _ = _variable_names(Settings, ENV_PREFIX)
    nearest = difflib.get_close_matches(name, sorted(names), n=1)
    return f" (did you mean {nearest[0]}?)" if nearest else " (docs/settings.md lists them all)"


def _variable_names(model: type[BaseModel], prefix: str) -> tuple[set[str], tuple[str, ...]]:
    """Every variable the tree reads, and the prefixes under which any name is a key (`CTSYNC_JOBS__…`)."""
    names = {CONFIG_FILE_VARIABLE}
    open_prefixes: list[str] = []
    for field, info in model.model_fields.items():
        name = prefix + field.upper()
        names.add(name)  # a whole section may come as one JSON value, too
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            inner, inner_open = _variable_names(info.annotation, name + "__")
            names |= inner
            open_prefixes += inner_open
        elif typing.get_origin(info.annotation) is dict:
            open_prefixes.append(name + "__")
    return names, tuple(open_prefixes)
