"""Adapter: reading the dead-letter queue (kombu). Each message is shown with its reason; replaying turns a message
that still names a member into a fresh event for that member and takes it off the queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from kombu.connection import Connection

from siebel_adapter.queue import QueueTopology
from sync_worker.core.messages import dead_letter_reason, member_reference
from sync_worker.core.ports import EventPublisher
from sync_worker.core.resubmit import resubmit_event


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
        reason = dead_letter_reason(message.headers)
        number = member_reference(message.body)
        seen.append(DeadLetter(number, reason))
        if publisher is not None and number is not None:
            publisher.publish(resubmit_event(number))
            message.ack()
    channel.close()  # what was not acked goes back to the dead-letter queue
    return seen
