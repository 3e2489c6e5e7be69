"""Use case: resubmit. Choose members to queue again (by Member Number, or by status and time window), refuse
members resubmitted too often unless forced, and publish fresh events for them. Talks only through ports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sync_worker.core.messages import MemberEvent
from sync_worker.core.ports import EventPublisher, MemberStore


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
