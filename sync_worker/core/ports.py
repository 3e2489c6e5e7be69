"""Ports: the core's view of each outside system, as `typing.Protocol`s. Adapters satisfy them structurally.

Every port raises only the `sync_worker.core.errors` tree. Each has an in-memory fake in `tests/fakes.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
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


class KnownStates(Protocol):
    """What ct-sync last learned of each member. The ledger keeps it; an outage of it only costs calls."""

    def known_state(self, member_number: str) -> KnownState: ...

    def remember(self, member_number: str, state: SyncedState | RefusedState) -> None:
        """A sync's verdict. Synced replaces any refusal; a refusal keeps what CrowdTwist still holds."""
        ...

    def forget(self, member_number: str) -> None:
        """A send whose outcome is unknown (a timeout): the next sync of the member sends, whatever it finds."""
        ...


class Ledger(Protocol):
    """The history of every attempt (SQLite by default, PostgreSQL in production)."""

    def record(self, attempts: Sequence[AttemptRecord]) -> None: ...


@dataclass(frozen=True)
class Alert:
    """One email: a subject, a plain-text body. Bodies carry Member Numbers, never personal data."""

    subject: str
    body: str


class Mailer(Protocol):
    """Sends an alert (SMTP) or files it (outbox .eml); raises TransientError when the server is down."""

    def send(self, alert: Alert) -> None: ...
