"""Adapter: the queue topology and the event publisher (kombu).

One durable direct exchange named after the queue, and three durable queues:
    Q          routing key "work"   events to sync
    Q.delay    routing key "delay"  redeliveries waiting for their time (the worker holds them, then republishes)
    Q.dead     routing key "dead"   messages that can never be processed, each with its reason in a header

Classic queues by default; quorum queues (replicated, for a RabbitMQ cluster) with `queue_type="quorum"`. Then the
work queue carries a delivery limit and dead-letters to Q.dead through the exchange: a message a worker dies on
every time (it never reaches an ack or a dead-letter decision) ends in Q.dead after `delivery_limit` deliveries,
whatever the workers do. A queue's type is fixed when RabbitMQ first declares it: switching one needs new names or
the old queues deleted (docs/operations.md).

Messages are JSON (`sync_worker.core.messages`), persistent, and published with confirms on RabbitMQ: `publish()`
returns only once the broker has the event, and raises `TransientError` when it cannot take it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.exceptions import OperationalError as KombuOperationalError
from kombu.messaging import Producer

from config.redaction import redact_text
from config.settings import BrokerSettings, Settings
from sync_worker.core.errors import TransientError
from sync_worker.core.messages import CONTENT_TYPE, MemberEvent, encode_event
from sync_worker.queue.broker import open_broker

_PUBLISH_RETRIES = 2


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


class KombuPublisher:
    """Implements the `EventPublisher` port. Thread-safe: one lock around the one connection."""

    def __init__(self, connection: Connection, topology: QueueTopology, *, confirm_timeout: float = 5.0) -> None:
        self._connection = connection
        self._topology = topology
        self._confirm_timeout = confirm_timeout
        self._lock = threading.Lock()
        self._producer: Producer | None = None
        self.failing = False  # the last publish failed: readiness turns red until one succeeds

    def publish(self, event: MemberEvent) -> None:
        self.publish_many([event])

    def publish_many(self, events: Iterable[MemberEvent]) -> int:
        count = 0
        with self._lock:
            for event in events:
                self._send(encode_event(event))
                count += 1
        return count

    def close(self) -> None:
        with self._lock:
            self._producer = None
            self._connection.release()

    def _send(self, body: bytes) -> None:
        errors = (*self._connection.connection_errors, *self._connection.channel_errors, OSError, KombuOperationalError)
        for attempt in range(_PUBLISH_RETRIES + 1):
            # Retrying helps a connection that went stale since the last publish; a broker that cannot be reached
            # (or that accepts and then says nothing) now would only make Siebel's request wait twice as long.
            was_connected = self._producer is not None
            try:
                self._ready_producer().publish(
                    body,
                    routing_key=self._topology.work_queue.routing_key,
                    content_type=CONTENT_TYPE,
                    content_encoding="utf-8",
                    delivery_mode=2,
                    retry=False,
                    confirm_timeout=self._confirm_timeout,
                )
                self.failing = False
                return
            except errors as exc:
                self._producer = None
                self._connection.collect()  # drop the broken transport; the next attempt connects afresh
                silent = isinstance(exc, TimeoutError)  # connected, but no confirm: another try would wait as long
                if silent or not was_connected or attempt == _PUBLISH_RETRIES:
                    self.failing = True
                    reason = redact_text(str(exc)) or type(exc).__name__
                    if silent:
                        reason = f"the broker did not confirm within {self._confirm_timeout:g} s"
                    raise TransientError(f"queue unavailable: {reason}", system="broker") from None
        raise AssertionError("unreachable")

    def _ready_producer(self) -> Producer:
        if self._producer is None:
            self._connection.ensure_connection(max_retries=1, interval_start=0.2, interval_step=0.2)
            self._topology.declare(self._connection)
            self._producer = Producer(self._connection.default_channel, exchange=self._topology.exchange)
        return self._producer


def build_publisher(settings: Settings) -> KombuPublisher:
    return KombuPublisher(
        open_broker(settings),
        QueueTopology.from_settings(settings.broker),
        confirm_timeout=settings.broker.confirm_timeout.total_seconds(),
    )
