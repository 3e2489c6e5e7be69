"""The event publisher (kombu), the `EventPublisher` port: messages are JSON (`sync_worker.core.messages`),
persistent, and confirmed by the broker before anyone is told they are queued: `publish()` returns only once the
broker has the event, and raises `TransientError` when it cannot take it.

Confirms are awaited per batch, not one round trip per event. Callers hand their events to one publishing thread
and wait for their own future (`publish()` blocks on it; `submit()` returns it, for the intake to await on its
event loop holding no thread). The thread owns the connection. It takes everything waiting (at most `max_batch`),
publishes it, and waits once for the whole batch:
- RabbitMQ: the channel is in confirm mode; the batch goes out without waiting, then the thread reads the broker's
  Basic.Ack / Basic.Nack frames (`multiple` honoured) and settles each event as its delivery tag is covered. A nack
  fails exactly the events it names; a broker silent past the confirm timeout fails the events it has not
  confirmed; a lost connection fails them too, unless it had been up since an earlier batch (it went stale), when
  they go out again on a fresh one.
- The embedded queue: the batch's rows are inserted in one transaction and committed once (all or none).
While one batch is out the next one gathers, so under load a batch holds the events that arrived during one round
trip, and alone an event goes out at once. (Publishing new events while earlier confirms are still out was
measured too: on a busy 2-core host it was slower, the publishing thread waking more often for smaller batches.)
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol

from kombu.connection import Connection
from kombu.exceptions import OperationalError as KombuOperationalError

from config.redaction import redact_text
from config.settings import Settings
from sync_worker.core.errors import TransientError
from sync_worker.core.messages import CONTENT_TYPE, MemberEvent, encode_event
from sync_worker.queue.broker import open_broker, publishing_in_one_transaction
from sync_worker.queue.topology import QueueTopology

_PUBLISH_RETRIES = 2
MAX_BATCH = 500


@dataclass(eq=False)
class Pending:
    """One event on its way: the encoded body, and the future its caller waits on."""

    body: bytes
    future: Future[None] = field(default_factory=Future)
    deadline: float = 0.0  # monotonic time by which the broker must have confirmed it

    def confirmed(self) -> None:
        if not self.future.done():
            self.future.set_result(None)

    def refused(self, reason: str) -> None:
        if not self.future.done():
            self.future.set_exception(TransientError(f"queue unavailable: {reason}", system="broker"))


class Batches:
    """Hands submitted events to one thread, in batches: `send` is called with everything waiting (at most
    `max_batch`) and settles every event of it, or raises (then the events it left unsettled fail with the
    error's text). The thread starts with the first event and ends at `close()`; a later event starts it again."""

    def __init__(self, send: Callable[[list[Pending]], None], *, max_batch: int = MAX_BATCH, name: str) -> None:
        self._send = send
        self._max_batch = max_batch
        self._name = name
        self._waiting: deque[Pending] = deque()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False

    def submit(self, bodies: Iterable[bytes]) -> list[Pending]:
        """Queue bodies for the thread, in order; under one lock, so a caller's events travel together."""
        pending = [Pending(body) for body in bodies]
        with self._changed:
            self._waiting.extend(pending)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._changed.notify()
        return pending

    def close(self) -> None:
        """Publish what is waiting, then stop the thread."""
        with self._changed:
            self._closing = True
            thread = self._thread
            self._changed.notify()
        if thread is not None:
            thread.join()
        with self._changed:
            self._closing = False

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._waiting and not self._closing:
                    self._changed.wait()
                if not self._waiting:  # closing, and nothing left
                    self._thread = None
                    return
                batch = [self._waiting.popleft() for _ in range(min(len(self._waiting), self._max_batch))]
            # A caller that gave up (a cancelled future) is not published for.
            batch = [pending for pending in batch if pending.future.set_running_or_notify_cancel()]
            if not batch:
                continue
            try:
                self._send(batch)
            except Exception as exc:  # noqa: BLE001  (the thread's top: a caller must never wait for ever)
                reason = redact_text(str(exc)) or type(exc).__name__
                for pending in batch:
                    pending.refused(reason)


class ConfirmChannel(Protocol):
    """What batched confirms need of an AMQP channel (py-amqp's, through kombu)."""

    events: Any  # "basic_ack" / "basic_nack" → callbacks (delivery_tag, multiple)

    def confirm_select(self) -> Any: ...

    def prepare_message(
        self,
        body: bytes,
        priority: int | None = None,
        content_type: str | None = None,
        content_encoding: str | None = None,
        headers: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
    ) -> Any: ...

    def _basic_publish(self, msg: Any, exchange: str = "", routing_key: str = "") -> Any: ...


class ConfirmTimeout(Exception):
    """The broker holds events it has not confirmed past their deadline: connected, but silent."""


class AmqpConfirms:
    """One AMQP channel in confirm mode. The broker numbers the channel's publishes 1, 2, 3… from confirm.select on,
    and confirms by those numbers; `unconfirmed` maps each number still open to its event, oldest first."""

    def __init__(
        self,
        channel: ConfirmChannel,
        drain: Callable[[float], object],
        *,
        exchange: str,
        routing_key: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._channel = channel
        self._drain = drain  # reads the broker's next frame within so many seconds; raises TimeoutError if none
        self._exchange = exchange
        self._routing_key = routing_key
        self._clock = clock
        self._last_tag = 0
        self.unconfirmed: dict[int, Pending] = {}
        self.nacked = False  # since the last look
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)

    def publish(self, batch: list[Pending], *, confirm_timeout: float) -> None:
        """Publish without waiting for confirms; each event must be confirmed within `confirm_timeout`."""
        channel = self._channel
        deadline = self._clock() + confirm_timeout
        for pending in batch:
            message = channel.prepare_message(pending.body, 0, CONTENT_TYPE, "utf-8", {}, {"delivery_mode": 2})
            # The channel's plain publish: with confirm_publish set, kombu would wait for each confirm here.
            channel._basic_publish(message, exchange=self._exchange, routing_key=self._routing_key)
            self._last_tag += 1
            pending.deadline = deadline
            self.unconfirmed[self._last_tag] = pending

    def collect(self, wait: float = math.inf) -> None:
        """Read confirms until none is outstanding, or for `wait` seconds. Raises ConfirmTimeout when the oldest
        event is past its deadline, and the transport's error when the connection is lost."""
        until = self._clock() + wait
        while self.unconfirmed:
            now = self._clock()
            oldest = next(iter(self.unconfirmed.values()))
            if now >= oldest.deadline:
                raise ConfirmTimeout
            if now >= until:
                return
            try:
                self._drain(min(until, oldest.deadline) - now)
            except TimeoutError:  # nothing arrived in time; py-amqp keeps a partly read frame for the next read
                continue

    def _settled(self, tag: int, multiple: bool) -> list[Pending]:
        if not multiple:
            pending = self.unconfirmed.pop(tag, None)
            return [] if pending is None else [pending]
        covered = []
        for unconfirmed in self.unconfirmed:
            if unconfirmed > tag:
                break
            covered.append(unconfirmed)
        return [self.unconfirmed.pop(unconfirmed) for unconfirmed in covered]

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        for pending in self._settled(delivery_tag, multiple):
            pending.confirmed()

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        for pending in self._settled(delivery_tag, multiple):
            pending.refused("the broker refused the event (nack)")
            self.nacked = True


class KombuPublisher:
    """Implements the `EventPublisher` port. Thread-safe: any thread may publish; the publishing thread (see the
    module docstring) alone uses the connection."""

    def __init__(
        self,
        connection: Connection,
        topology: QueueTopology,
        *,
        confirm_timeout: float = 5.0,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._connection = connection
        self._topology = topology
        self._confirm_timeout = confirm_timeout
        self._max_batch = max_batch
        self._batches = Batches(self._send, max_batch=max_batch, name="ct-sync-publisher")
        self._channel: Any = None  # once connected; the publishing thread's alone
        self._confirms: AmqpConfirms | None = None  # on RabbitMQ, once connected
        self.failing = False  # the last batch failed: readiness turns red until one is confirmed

    def submit(self, event: MemberEvent) -> Future[None]:
        """The event, handed to the publishing thread; the future completes once the broker confirmed it, or
        fails with TransientError."""
        return self._batches.submit([encode_event(event)])[0].future

    def publish(self, event: MemberEvent) -> None:
        self.submit(event).result()

    def publish_many(self, events: Iterable[MemberEvent]) -> int:
        count = 0
        iterator = iter(events)
        while chunk := list(islice(iterator, self._max_batch)):
            pending = self._batches.submit([encode_event(event) for event in chunk])
            errors = [item.future.exception() for item in pending]
            count += errors.count(None)
            for error in errors:
                if error is not None:
                    raise error
        return count

    def close(self) -> None:
        self._batches.close()  # what is waiting goes out first
        self._channel = self._confirms = None
        self._connection.release()

    def _send(self, batch: list[Pending]) -> None:
        errors = (*self._connection.connection_errors, *self._connection.channel_errors, OSError, KombuOperationalError)
        for attempt in range(_PUBLISH_RETRIES + 1):
            # Retrying helps a connection that went stale since the last batch; a broker that cannot be reached
            # (or that accepts and then says nothing) now would only make Siebel's requests wait twice as long.
            was_connected = self._channel is not None
            try:
                self._send_once(batch)
                return
            except (ConfirmTimeout, *errors) as exc:
                self._drop()
                batch = [pending for pending in batch if not pending.future.done()]  # confirmed before the loss
                silent = isinstance(exc, ConfirmTimeout)
                if silent or not was_connected or attempt == _PUBLISH_RETRIES:
                    self.failing = True
                    reason = redact_text(str(exc)) or type(exc).__name__
                    if silent:
                        reason = f"the broker did not confirm within {self._confirm_timeout:g} s"
                    for pending in batch:
                        pending.refused(reason)
                    return
            except BaseException:
                self._drop()  # in a state nobody foresaw: the next batch starts on a fresh connection
                raise

    def _send_once(self, batch: list[Pending]) -> None:
        channel = self._ready_channel()
        if self._confirms is not None:
            self._confirms.publish(batch, confirm_timeout=self._confirm_timeout)
            self._confirms.collect()
            self.failing = self._confirms.nacked  # readiness turns red until a batch goes through whole
            self._confirms.nacked = False
            return
        exchange, routing_key = self._topology.exchange.name, self._topology.work_queue.routing_key
        with publishing_in_one_transaction(channel):
            for pending in batch:
                message = channel.prepare_message(pending.body, 0, CONTENT_TYPE, "utf-8", {}, {"delivery_mode": 2})
                channel.basic_publish(message, exchange=exchange, routing_key=routing_key)
        for pending in batch:  # committed: every event of the batch is on the queue
            pending.confirmed()
        self.failing = False

    def _ready_channel(self) -> Any:
        if self._channel is None:
            self._connection.ensure_connection(max_retries=1, interval_start=0.2, interval_step=0.2)
            self._topology.declare(self._connection)
            channel: Any = self._connection.default_channel
            if self._connection.transport.driver_type == "amqp":
                self._confirms = AmqpConfirms(
                    channel,
                    lambda timeout: self._connection.drain_events(timeout=timeout),
                    exchange=self._topology.exchange.name,
                    routing_key=self._topology.work_queue.routing_key,
                )
            self._channel = channel
        return self._channel

    def _drop(self) -> None:
        self._channel = self._confirms = None
        self._connection.collect()  # drop the broken transport; the next batch connects afresh


def build_publisher(settings: Settings) -> KombuPublisher:
    return KombuPublisher(
        open_broker(settings),
        QueueTopology.from_settings(settings.broker),
        confirm_timeout=settings.broker.confirm_timeout.total_seconds(),
    )
