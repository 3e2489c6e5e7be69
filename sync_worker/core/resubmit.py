"""Use case: resubmit. Choose members to queue again (by Member Number, or by status and time window), refuse
members resubmitted too often unless forced, and members deleted in CrowdTwist on a privacy request (even forced:
`ct-sync privacy restore` is the way back), and publish fresh events for them; after an outage, requeue the members
it failed. Talks only through ports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sync_worker.core.member import SyncStatus
from sync_worker.core.messages import MemberEvent
from sync_worker.core.ports import EventPublisher, MemberStore, PrivacyDeletions
from sync_worker.core.privacy import deleted_text


class ResubmitHistory(Protocol):
    """What the ledger knows of earlier resubmits."""

    def resubmit_count(self, member_number: str) -> int: ...


@dataclass(frozen=True)
class Candidate:
    member_number: str
    row_id: str | None
    why: str


@dataclass
class Plan:
    queue: list[Candidate] = field(default_factory=list)
    refused: list[tuple[Candidate, int]] = field(default_factory=list)  # with how often already resubmitted
    unknown: list[str] = field(default_factory=list)
    deleted: list[tuple[Candidate, str]] = field(default_factory=list)  # with why: the privacy request

    def refusals(self) -> list[tuple[str, str]]:
        """(Member Number, why not queued) of every member refused, for the lines and the JSON."""
        too_often = [(c.member_number, f"resubmitted {n} times already (--force to insist)") for c, n in self.refused]
        return too_often + [(candidate.member_number, why) for candidate, why in self.deleted]


def resubmit_event(member_number: str, row_id: str | None = None, *, automatic: bool = False) -> MemberEvent:
    """A fresh event for a member queued again: by hand, from the dead-letter queue, or (`automatic`) by the
    worker after an outage."""
    return MemberEvent(
        event_type="update", member_number=member_number, row_id=row_id, source="resubmit", automatic=automatic
    )


def plan_resubmit(
    *,
    store: MemberStore,
    history: ResubmitHistory,
    members: Sequence[str] = (),
    statuses: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    max_resubmits: int,
    force: bool,
    privacy: PrivacyDeletions,
) -> Plan:
    plan = Plan()
    chosen: dict[str, Candidate] = {}
    for number in members:
        member = store.get_member(number)
        if member is None:
            plan.unknown.append(number)
        else:
            chosen.setdefault(number, Candidate(number, member.row_id, "asked for"))
    if statuses:
        for member in store.find_by_status(statuses, since=since, until=until):
            why = f"status {member.sync_status}"
            chosen.setdefault(member.member_number, Candidate(member.member_number, member.row_id, why))
    for candidate in chosen.values():
        deletion = privacy.deletion_request(candidate.member_number)
        if deletion is not None:
            plan.deleted.append((candidate, deleted_text(deletion)))
            continue
        count = history.resubmit_count(candidate.member_number)
        if count >= max_resubmits and not force:
            plan.refused.append((candidate, count))
        else:
            plan.queue.append(candidate)
    return plan


def publish_plan(plan: Plan, publisher: EventPublisher, *, progress: Callable[[int], None]) -> list[MemberEvent]:
    events = []
    for candidate in plan.queue:
        event = resubmit_event(candidate.member_number, candidate.row_id)
        publisher.publish(event)
        events.append(event)
        progress(1)
    return events


def requeue_ct_failures(store: MemberStore, publisher: EventPublisher, *, since: datetime) -> int:
    """After an outage: queue again every member written CT Failure since it began (automatic resubmits)."""
    return publisher.publish_many(
        resubmit_event(member.member_number, member.row_id, automatic=True)
        for member in store.find_by_status([SyncStatus.CT_FAILURE], since=since)
    )
