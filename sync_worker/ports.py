"""Ports: the core's view of each outside system, as `typing.Protocol`s. Adapters satisfy them structurally.

Every port raises only the `sync_worker.errors` tree. Each has an in-memory fake in `tests/fakes.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Protocol

from crowdtwist_client.models import CtUser, UserPayload
from siebel_adapter.member import Member, SyncOutcome
from sync_worker.messages import MemberEvent


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

    def changed_since(self, watermark: datetime | None) -> Iterator[list[Member]]:
        """Pages of members whose Updated stamp is after `watermark` (all members when None), oldest first."""
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
