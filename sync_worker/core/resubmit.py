"""Resubmit: choose members to queue again (by Member Number, by status and time window, or from the dead-letter
queue), refuse members resubmitted too often unless forced, and publish fresh events for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from kombu.connection import Connection

from siebel_adapter.queue import QueueTopology
from sync_worker.core.messages import MemberEvent
from sync_worker.core.ports import EventPublisher, MemberStore
from sync_worker.ledger.sql import SqlLedger


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


def plan_resubmit(
    *,
    store: MemberStore,
    ledger: SqlLedger,
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
        count = ledger.resubmit_count(candidate.member_number)
        if count >= max_resubmits and not force:
            plan.refused.append((candidate, count))
        else:
            plan.queue.append(candidate)
    return plan


def publish_plan(plan: Plan, publisher: EventPublisher, *, progress: Callable[[int], None]) -> list[MemberEvent]:
    events = []
    for candidate in plan.queue:
        event = MemberEvent(
            event_type="update", member_number=candidate.member_number, row_id=candidate.row_id, source="resubmit"
        )
        publisher.publish(event)
        events.append(event)
        progress(1)
    return events


@dataclass(frozen=True)
class DeadLetter:
    member_number: str | None
    reason: str


def replay_dead_letters(
    connection: Connection, topology: QueueTopology, publisher: EventPublisher | None
) -> list[DeadLetter]:
    """Read the dead-letter queue. With a publisher, each message naming a member becomes a fresh event and leaves
    the queue; messages that name no member stay where they are. Without one (dry run), nothing moves."""
    seen: list[DeadLetter] = []
    channel = connection.channel()
    queue = topology.dead_queue.bind(channel)
    queue.declare()
    while (message := queue.get(no_ack=False)) is not None:
        reason = str(message.headers.get("x-ct-sync-reason", "unknown"))
        number = _member_number(message.body)
        seen.append(DeadLetter(number, reason))
        if publisher is not None and number is not None:
            publisher.publish(MemberEvent(event_type="update", member_number=number, source="resubmit"))
            message.ack()
    channel.close()  # what was not acked goes back to the dead-letter queue
    return seen


def _member_number(body: bytes | str) -> str | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    number = document.get("member_number") if isinstance(document, dict) else None
    return number if isinstance(number, str) and number.strip() else None
