"""Ports: the core's view of each outside system, as `typing.Protocol`s. Adapters satisfy them structurally.

Every port raises only the `sync_worker.core.errors` tree. Each has an in-memory fake in `tests/fakes.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal, Protocol

from sync_worker.core.ct_user import CtUser, UserPayload
from sync_worker.core.errors import InvalidRecord
from sync_worker.core.member import Member, SyncOutcome
from sync_worker.core.messages import MemberEvent


class CrowdTwistUsers(Protocol):
    """The member operations the sync needs. Look-ups and updates by third_party_id (= Siebel Member Number)."""

    def get_user(self, third_party_id: str) -> CtUser | None:
        """The user, or None when CrowdTwist answers 404."""
        ...

    def create_user(self, payload: UserPayload) -> CtUser:
        """Create; raises DataRejected when CrowdTwist refuses the data (e.g. a taken email)."""
        ...

    def update_user(self, third_party_id: str, payload: UserPayload) -> CtUser | None:
        """Partial update; None when CrowdTwist does not know the user (404)."""
        ...


@dataclass(frozen=True, order=True)
class ChangeCursor:
    """A place in Siebel's change order: the (Updated, Id) of the last record read."""

    updated: datetime
    row_id: str


@dataclass(frozen=True)
class ChangePage:
    """One page of changed records. A record that is no valid member stays in its page as the `InvalidRecord`
    describing it (one bad record stops nothing); `last` is where the next page starts."""

    items: list[Member | InvalidRecord]
    last: ChangeCursor


class MemberStore(Protocol):
    """Siebel's members: read the current state, write the sync outcome back."""

    def get_member(self, member_number: str) -> Member | None: ...

    def write_outcome(self, row_id: str, outcome: SyncOutcome) -> None:
        """Write status, error text, CT user id and time onto the member; idempotent."""
        ...

    def find_by_status(
        self, statuses: Sequence[str], *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[Member]:
        """Members whose CT Sync Status is one of `statuses`, last written inside the window."""
        ...

    def changed_after(self, cursor: ChangeCursor | None) -> Iterator[ChangePage]:
        """Pages of members in Siebel's change order, (Updated, Id), strictly after `cursor` (every member when
        None). Keyset paging, never offsets: a write moves a row to the end of the order (Siebel bumps Updated on
        every write, ours included), so an offset would skip rows; a key cannot."""
        ...

    def count_changed_after(self, cursor: ChangeCursor | None) -> int | None:
        """How many records `changed_after(cursor)` would yield now, for a progress bar's total; None when the store
        cannot tell. Rows move while a poll reads, so it is an estimate, never a limit."""
        ...

    def find_matching(self, conditions: Sequence[tuple[str, str]]) -> Iterator[Member | InvalidRecord]:
        """Every member whose Siebel fields equal these values (ANDed), streamed page by page in Member Number
        order. Values are quoted like every searchspec, never pasted. A record that is no valid member comes as
        its `InvalidRecord` (not raised), so one bad record does not end the stream. A condition on a field the
        store does not know raises `UnknownField` (as Siebel refuses such a searchspec): never an empty result."""
        ...

    def field_names(self) -> frozenset[str]:
        """The field names the store knows for its members (what `UnknownField` names the nearest of)."""
        ...

    def close(self) -> None:
        """Release what the store holds (the REST store's HTTP pool); it is not used afterwards."""
        ...


class EventPublisher(Protocol):
    """Puts events on the work queue; returns only once the broker confirmed, raises TransientError if not."""

    def publish(self, event: MemberEvent) -> None: ...

    def publish_many(self, events: Iterable[MemberEvent]) -> int:
        """Publish several events; the number confirmed."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


AttemptOutcome = Literal[
    "Synced", "Data Error", "CT Failure", "OIC Failure", "Unchanged", "Skipped", "Retrying", "Dead-lettered"
]


@dataclass(frozen=True)
class AttemptRecord:
    """One row of history: what one attempt to sync one event did. Never holds personal data or secrets."""

    event_id: str
    member_number: str
    event_type: str
    outcome: AttemptOutcome
    at: datetime
    attempt: int = 1
    error: str | None = None
    ct_user_id: int | None = None
    ct_calls: int = 0
    duration_ms: float = 0.0
    source: str = ""


@dataclass(frozen=True)
class SyncedState:
    """What CrowdTwist last accepted for a member: lets an unchanged member cost no CrowdTwist call."""

    payload_hash: str
    ct_user_id: int
    synced_at: datetime


@dataclass(frozen=True)
class RefusedState:
    """Data last refused for a member (by CrowdTwist or the pre-check): while the member is unchanged, it costs no
    call, no write and no alert, however often Siebel's write-back stamps bring it round again."""

    fingerprint: str
    reason: str
    refused_at: datetime


@dataclass(frozen=True)
class KnownState:
    synced: SyncedState | None = None
    refused: RefusedState | None = None
    deleted_by: str | None = None  # the privacy request that deleted the member in CrowdTwist: never send it again


class KnownStates(Protocol):
    """What ct-sync last learned of each member. The ledger keeps it; an outage of it only costs calls."""

    def known_state(self, member_number: str) -> KnownState:
        """What is known of the member, its deletion on a privacy request included (one read)."""
        ...

    def remember(self, member_number: str, state: SyncedState | RefusedState) -> None:
        """A sync's verdict. Synced replaces any refusal; a refusal keeps what CrowdTwist still holds. One that
        cannot be written is not lost silently: what was known of the member is forgotten as soon as the ledger can
        be written again, so no later sync trusts a stale state."""
        ...

    def forget(self, member_number: str) -> None:
        """A send whose outcome is unknown (a timeout): the next sync of the member sends, whatever it finds. One that
        cannot be written now is done as soon as the ledger can be written again."""
        ...


class MemberLocks(Protocol):
    """One sync of a member at a time, across every worker process (within one, the consumer already sees to it).
    A lock dies with the process that held it: a killed worker never leaves a member locked."""

    def try_lock(self, member_number: str) -> bool:
        """Take the member's lock if it is free; never waits."""
        ...

    def unlock(self, member_number: str) -> None: ...


class Ledger(Protocol):
    """The history of every attempt (SQLite by default, PostgreSQL in production)."""

    def record(self, attempts: Sequence[AttemptRecord]) -> None: ...


@dataclass(frozen=True)
class LatestOutcome:
    """What a member's newest decisive attempt left on it (a retry or an unchanged re-check decides nothing)."""

    outcome: str
    error: str | None
    at: datetime


class LatestOutcomes(Protocol):
    """Where members stand now, whichever process handled them last (the ledger): an alert says what is true when
    it is sent."""

    def latest_outcomes(self, member_numbers: Sequence[str]) -> Mapping[str, LatestOutcome]:
        """The newest decisive attempt of each of these members; members never attempted are left out."""
        ...


@dataclass(frozen=True)
class Alert:
    """One email: a subject, a plain-text body. Bodies carry Member Numbers, never personal data."""

    subject: str
    body: str
    to: tuple[str, ...] = ()  # its own recipients (a job's `notify_to`); empty: CTSYNC_ALERTS__TO


class Mailer(Protocol):
    """Sends an alert (SMTP) or files it (outbox .eml); raises TransientError when the server is down."""

    def send(self, alert: Alert) -> None: ...


# -- files to CrowdTwist's drop folder, and the runs that deliver them -------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """A file now visible under its final name in the drop folder, with the size the server reports."""

    name: str
    size: int
    destination: str  # "sftp://user@host:port/folder" or the local folder; never a secret


class FileDrop(Protocol):
    """CrowdTwist's drop folder (SFTP, or a local folder by default). A file appears under `name` whole or not at
    all: written under a temporary name, renamed when complete, its size checked. Raises `ConfigurationError`
    for a refused host key, login or folder, `TransientError` when the server cannot be reached or fails."""

    @property
    def destination(self) -> str: ...

    def deliver(self, local: Path, name: str, *, progress: Callable[[int], None] | None = None) -> Delivery: ...


class Deliveries(Protocol):
    """The ledger's record of files delivered per segment and date: CrowdTwist empties its folder, so the
    highest suffix already used is known only from here. A suffix is reserved before the upload, so two runs
    never take the same one."""

    def highest_suffix(self, segment: str, day: date) -> int | None: ...

    def reserve_suffix(self, segment: str, day: date, *, propose: Callable[[int | None], int], run_id: str) -> int:
        """Reserve `propose(highest suffix already reserved that day)` for this segment; unique per (segment, day)."""
        ...

    def mark_delivered(self, segment: str, day: date, suffix: int, *, file_name: str, rows: int, size: int) -> None: ...

    def release_suffix(self, segment: str, day: date, suffix: int) -> None:
        """Forget a reservation whose upload failed (nothing visible under that name)."""
        ...


RunStatus = Literal["Running", "Success", "Failed", "Stopped"]


@dataclass
class RunResult:
    """What a finished job run reports: its counts, the files it delivered, its error (None on success)."""

    status: RunStatus
    counts: Mapping[str, int] = field(default_factory=dict)
    files: Sequence[str] = ()
    error: str | None = None


class JobRuns(Protocol):
    """The ledger's record of job runs (`JOB.RUN` ids) and their log lines. A segment export started from the
    command line is a run of the job `cli-segment-NAME`; a job run inside a group's run names it."""

    def start_run(self, job: str, *, kind: str, trigger: str, at: datetime, group_run_id: str | None = None) -> str:
        """Record a `Running` run; returns its id `JOB.N` (N grows per job)."""
        ...

    def log(self, run_id: str, line: str, *, at: datetime) -> None: ...

    def stop_requested(self, run_id: str) -> bool:
        """Whether `ct-sync jobs stop` asked this run to stop."""
        ...

    def finish_run(self, run_id: str, result: RunResult, *, at: datetime) -> None: ...


class RunStopped(Exception):
    """Raised at a run's safe point once it was asked to stop (`ct-sync jobs stop`, or the scheduler's SIGTERM):
    nothing half-done is left behind (a segment is delivered whole or not at all)."""


class PrivacyDeletions(Protocol):
    """Members deleted in CrowdTwist on a privacy request: never synced, resubmitted or written to a segment."""

    def deletion_request(self, member_number: str) -> str | None:
        """The id of the privacy request that deleted this member, or None."""
        ...


class NoPrivacyDeletions:
    """Nobody is deleted (tests and callers that hold no register)."""

    def deletion_request(self, member_number: str) -> str | None:
        return None
