"""Adapter: the kombu consumer. Carries out the handler's decisions; decides nothing itself.

Threads: the connection belongs to the thread that calls `run()`. It drains deliveries, keeps heartbeats going,
and is the only thread that acks or publishes. Syncs run on a pool of up to `concurrency` threads, as many at once as
`in_flight()` says (the sizer's Little's-law figure); each hands back a
`Handled` through a queue and goes straight on with the next waiting member, and the connection thread carries
the decisions out:

    ack           → ack every message the sync covered
    retry_later   → publish the next attempt to the delay queue (header: not before), then ack
    dead_letter   → publish the body to the dead-letter queue (headers: reason, time, letter id), then ack

Nothing is acked before its outcome is written (the handler writes it), and a message is only acked after its
successor (retry, parked copy or dead letter) was confirmed by the broker. Messages for a member whose sync is
running wait and are coalesced into one more sync. Delayed messages are held, unacked, until their time and then
republished to the work queue (dramatiq's delay-queue design), so a waiting member never blocks the others.

Nothing is held unacked for long (`max_hold`, well under RabbitMQ's 30-minute consumer timeout, past which it closes
the channel and redelivers everything): a delayed message not yet due is parked again in the delay queue, and a
message waiting to start (the outage breaker shut the gate) is parked there too, keeping its redelivered mark;
when the breaker closes, `release_parked()` sends the parked messages held here back to work at once.
A message the worker cannot read (a bad header, anything) goes to the dead-letter queue with the reason: the worker
never dies on a message's content. After a lost connection everything unacked is redelivered by the broker; results
that finish for the old connection are dropped, never acked on a new channel.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.exceptions import OperationalError as KombuOperationalError
from kombu.message import Message
from kombu.messaging import Consumer, Producer

from config.redaction import redact_text
from sync_worker.core.dead_letters import new_letter_id
from sync_worker.core.decisions import Decision, Handled
from sync_worker.core.errors import InvalidEvent
from sync_worker.core.messages import (
    CONTENT_TYPE,
    HEADER_DEAD_AT,
    HEADER_LETTER_ID,
    HEADER_NOT_BEFORE,
    HEADER_PARKED,
    HEADER_REASON,
    HEADER_REDELIVERED,
    MemberEvent,
    decode_event,
    encode_event,
)

log = structlog.get_logger("ct_sync.consumer")

# How long the connection thread waits for a delivery before it looks at finished syncs and due retries again.
_DRAIN_TIMEOUT = 0.02
# Delayed messages held unacked at once; the rest wait in the delay queue.
_DELAY_PREFETCH = 1000
_RECONNECT_DELAYS = (1.0, 2.0, 4.0, 8.0)
_SHUTDOWN_GRACE = 120.0
_DEPTHS_EVERY = 15.0  # seconds between queue-depth readings (a passive declare each)


class Topology(Protocol):
    """What the consumer needs of the queue topology (sync_worker.queue.topology)."""

    @property
    def exchange(self) -> Exchange: ...

    @property
    def work_queue(self) -> Queue: ...

    @property
    def delay_queue(self) -> Queue: ...

    @property
    def dead_queue(self) -> Queue: ...

    def depths(self, connection: Connection) -> dict[str, int]: ...


class Handler(Protocol):
    def handle(self, events: Sequence[MemberEvent], *, redelivered: bool = False) -> Handled: ...

    def crashed(self, events: Sequence[MemberEvent], exc: Exception) -> Handled: ...


@dataclass
class _Batch:
    member_number: str
    generation: int
    messages: list[Message] = field(default_factory=list)
    events: list[MemberEvent] = field(default_factory=list)
    redelivered: bool = False  # a message of the batch was delivered before: its fate then is unknown
    held_since: float = field(default_factory=time.monotonic)


class QueueWorker:
    def __init__(
        self,
        *,
        connection: Connection,
        topology: Topology,
        handler: Handler,
        concurrency: int,
        in_flight: Callable[[], int] | None = None,
        prefetch: int,
        may_start: Callable[[], bool] = lambda: True,
        on_handled: Callable[[Handled], None] = lambda handled: None,
        on_dead_letter: Callable[[bytes, str], None] = lambda body, reason: None,
        on_tick: Callable[[], None] = lambda: None,
        on_depths: Callable[[dict[str, int]], None] | None = None,
        max_hold: float = 300.0,
    ) -> None:
        self._connection = connection
        self._topology = topology
        self._handler = handler
        self._concurrency = concurrency  # the cap: the pool's threads
        self._in_flight = in_flight or (lambda: concurrency)  # how many may sync at once now
        self._prefetch = prefetch
        self._may_start = may_start  # the outage breaker's gate
        self._on_handled = on_handled
        self._on_dead_letter = on_dead_letter
        self._on_tick = on_tick  # called on the connection thread every loop: keep it cheap
        self._on_depths = on_depths
        self._max_hold = max_hold  # seconds a message may stay unacked before it is parked
        self._depths_at = 0.0
        self._parked_at = 0.0
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ct-sync")
        self._done: queue.SimpleQueue[tuple[_Batch, Handled]] = queue.SimpleQueue()
        self._generation = 0
        self._waiting: dict[str, _Batch] = {}  # member → messages not yet started
        self._ready: deque[str] = deque()  # members with waiting messages, in arrival order
        self._running: set[str] = set()  # members with a sync whose result is not yet carried out
        self._active = 0  # pool threads busy with a sync
        self._lock = threading.Lock()  # guards _waiting, _ready, _running, _active: pool threads take work too
        self._delayed: list[tuple[float, int, float, Message]] = []  # (wake at, order, not before, message)
        self._sequence = itertools.count()
        self._producer: Producer | None = None
        self.connected = threading.Event()
        self.connections = 0  # channels opened: more than one means the broker closed one under us
        self.parked = 0  # messages parked in the delay queue because they waited `max_hold` unacked

    # -- lifecycle -------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop taking messages, finish the syncs in flight, ack them, return from `run()`. Signal-safe."""
        self._stopping.set()

    def release_parked(self) -> None:
        """The outage breaker closed: the parked messages held here are due now, not at their time (up to
        `max_hold / 2` away). Connection thread only, like every hook of the supervisor's that calls it."""
        now = time.time()
        released = 0
        for index, (_, order, _, message) in enumerate(self._delayed):
            if (message.headers or {}).get(HEADER_PARKED):
                self._delayed[index] = (now, order, now, message)
                released += 1
        if released:
            heapq.heapify(self._delayed)
            log.info("parked_messages_released", messages=released)

    def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            connection = self._connection.clone()
            try:
                with connection:
                    connection.ensure_connection(max_retries=1)
                    failures = 0
                    self._consume(connection)
            except (*connection.connection_errors, *connection.channel_errors, OSError, KombuOperationalError) as exc:
                connection.collect()  # a connection the broker closed keeps its socket open until dropped here
                self.connected.clear()
                self._forget_unacked()
                delay = _RECONNECT_DELAYS[min(failures, len(_RECONNECT_DELAYS) - 1)]
                failures += 1
                log.warning("broker_connection_lost", error=redact_text(str(exc)), retry_in_s=delay)
                self._stopping.wait(delay)
        self._pool.shutdown(wait=True)
        log.info("worker_stopped")

    # -- the connection thread ---------------------------------------------------------------------------------

    def _consume(self, connection: Connection) -> None:
        self._generation += 1
        work_channel, delay_channel = connection.channel(), connection.channel()
        work_channel.basic_qos(0, self._prefetch, False)
        delay_channel.basic_qos(0, _DELAY_PREFETCH, False)
        self._producer = Producer(connection.default_channel, exchange=self._topology.exchange)
        for entity in (self._topology.exchange, self._topology.work_queue, self._topology.delay_queue):
            entity.bind(connection.default_channel).declare()
        self._topology.dead_queue.bind(connection.default_channel).declare()
        consumers = [
            Consumer(work_channel, queues=[self._topology.work_queue], on_message=self._guarded(self._on_work)),
            Consumer(delay_channel, queues=[self._topology.delay_queue], on_message=self._guarded(self._on_delayed)),
        ]
        for consumer in consumers:
            consumer.consume()
        self.connected.set()
        self.connections += 1
        log.info("worker_consuming", queue=self._topology.work_queue.name, concurrency=self._concurrency)
        while not self._stopping.is_set():
            self._pump()
            self._drain(connection)
            self._report_depths(connection)
        for consumer in consumers:
            consumer.cancel()  # take no more; what was prefetched and not started goes back on close
        self._finish_in_flight(connection)

    def _report_depths(self, connection: Connection) -> None:
        if self._on_depths is None or time.monotonic() - self._depths_at < _DEPTHS_EVERY:
            return
        self._depths_at = time.monotonic()
        self._on_depths(self._topology.depths(connection))

    def _drain(self, connection: Connection) -> None:
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=_DRAIN_TIMEOUT)
        connection.heartbeat_check()

    def _pump(self) -> None:
        """Carry out finished decisions, republish due retries, start waiting members."""
        while True:
            try:
                batch, handled = self._done.get_nowait()
            except queue.Empty:
                break
            self._finish(batch, handled)
        now = time.time()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, not_before, message = heapq.heappop(self._delayed)
            due = not_before <= now  # or held long enough: back to the delay queue, acked here
            queue_key = (self._topology.work_queue if due else self._topology.delay_queue).routing_key
            self._publish(message.body, routing_key=queue_key, headers={} if due else dict(message.headers))
            message.ack()
        self._park_long_waiting()
        with self._lock:
            while self._active < min(self._in_flight(), self._concurrency):
                ready = self._next_batch()
                if ready is None:
                    break
                self._active += 1
                self._pool.submit(self._run_batches, ready)
        self._on_tick()

    def _park_long_waiting(self) -> None:
        """Messages that could not start for `max_hold` (the breaker is open): into the delay queue, acked."""
        now = time.monotonic()
        if now - self._parked_at < 1.0:
            return
        self._parked_at = now
        with self._lock:
            stale = [batch for batch in self._waiting.values() if now - batch.held_since >= self._max_hold]
            for batch in stale:
                del self._waiting[batch.member_number]  # _ready skips members no longer waiting
        for batch in stale:
            not_before = time.time() + self._max_hold / 2
            for message in batch.messages:
                headers: dict[str, Any] = {HEADER_NOT_BEFORE: not_before, HEADER_PARKED: 1}
                if _redelivered(message):
                    headers[HEADER_REDELIVERED] = 1
                self._publish(message.body, routing_key=self._topology.delay_queue.routing_key, headers=headers)
                message.ack()
                self.parked += 1
        if stale:
            log.info("messages_parked", members=len(stale), for_s=round(self._max_hold / 2))

    def _guarded(self, on_message: Callable[[Message], None]) -> Callable[[Message], None]:
        """A message the worker cannot read (a bad header, anything unforeseen) goes to the dead-letter queue with the
        reason; a lost connection still goes up to the reconnect loop."""
        lost = (*self._connection.connection_errors, *self._connection.channel_errors, OSError, KombuOperationalError)

        def guarded(message: Message) -> None:
            try:
                on_message(message)
            except lost:
                raise
            except Exception as exc:  # the consumer's top: no message may crash the worker
                log.exception("message_unreadable")
                self._dead_letter(message, f"the worker could not read the message: {type(exc).__name__}")

        return guarded

    def _on_work(self, message: Message) -> None:
        try:
            event = decode_event(message.body, content_type=message.content_type)
        except InvalidEvent as invalid:
            self._dead_letter(message, invalid.message)
            return
        with self._lock:
            batch = self._waiting.get(event.member_number)
            if batch is None:
                batch = self._waiting[event.member_number] = _Batch(event.member_number, self._generation)
                if event.member_number not in self._running:
                    self._ready.append(event.member_number)
            batch.messages.append(message)
            batch.events.append(event)
            batch.redelivered = batch.redelivered or _redelivered(message)

    def _on_delayed(self, message: Message) -> None:
        try:
            not_before = float(message.headers[HEADER_NOT_BEFORE])
        except (KeyError, TypeError, ValueError):
            self._dead_letter(message, f"delayed message without a readable {HEADER_NOT_BEFORE} header")
            return
        if not math.isfinite(not_before):
            self._dead_letter(message, f"delayed message with {HEADER_NOT_BEFORE} {not_before}")
            return
        wake_at = min(not_before, time.time() + self._max_hold)
        heapq.heappush(self._delayed, (wake_at, next(self._sequence), not_before, message))

    def _next_batch(self) -> _Batch | None:
        """The next waiting member's events, or None (nothing ready, stopping, or the breaker says wait).

        Called with the lock held, by the connection thread and by pool threads that just finished a sync."""
        while self._ready and not self._stopping.is_set():
            member_number = self._ready[0]
            if member_number in self._running or member_number not in self._waiting:
                self._ready.popleft()  # re-queued by _finish when its running sync is carried out
                continue
            if not self._may_start():
                return None
            self._ready.popleft()
            self._running.add(member_number)
            return self._waiting.pop(member_number)
        return None

    def _finish(self, batch: _Batch, handled: Handled) -> None:
        with self._lock:
            self._running.discard(batch.member_number)
            if batch.member_number in self._waiting:  # events arrived meanwhile: one more sync covers them all
                self._ready.append(batch.member_number)
        if batch.generation != self._generation:
            return  # its channel is gone; the broker redelivers those messages
        decision = handled.decision
        if decision.action == "dead_letter":
            for message in batch.messages:
                self._dead_letter(message, decision.reason or "refused")
        else:
            if decision.action == "retry_later":
                self._schedule_retry(decision)
            for message in batch.messages:
                message.ack()
        self._on_handled(handled)

    def _schedule_retry(self, decision: Decision) -> None:
        assert decision.retry_event is not None
        assert decision.delay is not None
        not_before = time.time() + decision.delay.total_seconds()
        self._publish(
            encode_event(decision.retry_event),
            routing_key=self._topology.delay_queue.routing_key,
            headers={HEADER_NOT_BEFORE: not_before},
        )

    def _dead_letter(self, message: Message, reason: str) -> None:
        log.warning("message_dead_lettered", reason=reason, bytes=len(message.body))
        self._publish(
            message.body,
            routing_key=self._topology.dead_queue.routing_key,
            headers={HEADER_REASON: reason[:1000], HEADER_DEAD_AT: time.time(), HEADER_LETTER_ID: new_letter_id()},
            content_type=message.content_type or "application/octet-stream",
        )
        message.ack()
        self._pool.submit(self._on_dead_letter, message.body, reason)

    def _publish(
        self, body: bytes, *, routing_key: str, headers: dict[str, Any], content_type: str = CONTENT_TYPE
    ) -> None:
        assert self._producer is not None
        self._producer.publish(
            body,
            routing_key=routing_key,
            headers=headers,
            content_type=content_type,
            content_encoding="utf-8" if content_type == CONTENT_TYPE else "binary",
            delivery_mode=2,
            retry=False,  # a failure here is a lost connection: the outer loop reconnects, nothing is acked
        )

    def _forget_unacked(self) -> None:
        """After a lost connection: everything not acked will be redelivered; running syncs finish unacked."""
        with self._lock:
            self._waiting.clear()
            self._ready.clear()
        self._delayed.clear()

    def _finish_in_flight(self, connection: Connection) -> None:
        deadline = time.monotonic() + _SHUTDOWN_GRACE
        with self._lock:
            self._waiting.clear()
            self._ready.clear()
        while self._running and time.monotonic() < deadline:
            self._pump()
            self._drain(connection)
        if self._running:
            log.error("shutdown_abandoned_syncs", members=len(self._running))

    # -- pool threads ------------------------------------------------------------------------------------------

    def _run_batches(self, batch: _Batch | None) -> None:
        """Sync, hand the result to the connection thread, and go straight on with the next waiting member: a
        pool thread never idles waiting for the connection thread to notice it is free."""
        while batch is not None:
            try:
                handled = self._handler.handle(batch.events, redelivered=batch.redelivered)
            except Exception as exc:  # the consumer's top loop: a bug must not kill the thread or lose the message
                log.exception("sync_crashed", member_number=batch.member_number)
                handled = self._handler.crashed(batch.events, exc)
            self._done.put((batch, handled))
            with self._lock:
                # Over the in-flight figure (it fell): this thread stops taking work; otherwise the next member.
                over = self._active > min(self._in_flight(), self._concurrency)
                batch = None if over else self._next_batch()
                if batch is None:
                    self._active -= 1


def _redelivered(message: Message) -> bool:
    """The broker delivered it before (RabbitMQ's flag), or it is a parked copy of one it had."""
    return bool(message.delivery_info.get("redelivered") or (message.headers or {}).get(HEADER_REDELIVERED))
