"""The event publisher (kombu), the `EventPublisher` port: messages are JSON (`sync_worker.core.messages`),
persistent, and published with confirms on RabbitMQ: `publish()` returns only once the broker has the event, and
raises `TransientError` when it cannot take it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from kombu.connection import Connection
from kombu.exceptions import OperationalError as KombuOperationalError
from kombu.messaging import Producer

from config.redaction import redact_text
from config.settings import Settings
from sync_worker.core.errors import TransientError
from sync_worker.core.messages import CONTENT_TYPE, MemberEvent, encode_event
from sync_worker.queue.broker import open_broker
from sync_worker.queue.topology import QueueTopology

_PUBLISH_RETRIES = 2


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
