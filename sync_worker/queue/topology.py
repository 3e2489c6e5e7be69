"""The queue topology (kombu): one durable direct exchange named after the queue, and three durable queues:
    Q          routing key "work"   events to sync
    Q.delay    routing key "delay"  redeliveries waiting for their time (the worker holds them, then republishes)
    Q.dead     routing key "dead"   messages that can never be processed, each with its reason in a header

Classic queues by default; quorum queues (replicated, for a RabbitMQ cluster) with `queue_type="quorum"`. Then the
work queue carries a delivery limit and dead-letters to Q.dead through the exchange: a message a worker dies on
every time (it never reaches an ack or a dead-letter decision) ends in Q.dead after `delivery_limit` deliveries,
whatever the workers do. A queue's type is fixed when RabbitMQ first declares it: switching one needs new names or
the old queues deleted (docs/operations.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from kombu.connection import Connection
from kombu.entity import Exchange, Queue

from config.settings import BrokerSettings


@dataclass(frozen=True)
class QueueTopology:
    exchange: Exchange
    work_queue: Queue
    delay_queue: Queue
    dead_queue: Queue

    @classmethod
    def named(
        cls, name: str, *, queue_type: Literal["classic", "quorum"] = "classic", delivery_limit: int = 5
    ) -> QueueTopology:
        exchange = Exchange(name, type="direct", durable=True)
        quorum: dict[str, Any] = {"x-queue-type": "quorum"} if queue_type == "quorum" else {}
        work_arguments = {**quorum}
        if quorum:
            work_arguments |= {
                "x-delivery-limit": delivery_limit,
                "x-dead-letter-exchange": name,
                "x-dead-letter-routing-key": "dead",
            }
        return cls(
            exchange=exchange,
            work_queue=Queue(name, exchange, routing_key="work", durable=True, queue_arguments=work_arguments),
            delay_queue=Queue(f"{name}.delay", exchange, routing_key="delay", durable=True, queue_arguments=quorum),
            dead_queue=Queue(f"{name}.dead", exchange, routing_key="dead", durable=True, queue_arguments=quorum),
        )

    @classmethod
    def from_settings(cls, settings: BrokerSettings) -> QueueTopology:
        return cls.named(settings.queue, queue_type=settings.queue_type, delivery_limit=settings.delivery_limit)

    @property
    def queues(self) -> tuple[Queue, Queue, Queue]:
        return (self.work_queue, self.delay_queue, self.dead_queue)

    def declare(self, connection: Connection) -> None:
        channel = connection.default_channel
        self.exchange.bind(channel).declare()
        for queue in self.queues:
            queue.bind(channel).declare()

    def delete(self, connection: Connection) -> None:
        """Remove the queues and the exchange (tests and benchmarks that made a topology of their own)."""
        channel = connection.default_channel
        for queue in self.queues:
            queue.bind(channel).delete()
        self.exchange.bind(channel).delete()

    def depths(self, connection: Connection) -> dict[str, int]:
        """Messages ready in each queue, as the broker reports them (passive declare)."""
        channel = connection.default_channel
        depths: dict[str, int] = {}
        for queue in self.queues:
            _, count, _ = queue.bind(channel).queue_declare(passive=True)
            depths[queue.name] = int(count)
        return depths
