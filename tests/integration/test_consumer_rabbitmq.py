"""The kombu consumer on a real RabbitMQ: acks after outcomes, dead letters, delayed retries, coalescing, stop."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pytest
from kombu.connection import Connection
from kombu.entity import Queue
from kombu.messaging import Producer

from sync_worker.core.decisions import Decision
from sync_worker.core.messages import (
    HEADER_LETTER_ID,
    HEADER_NOT_BEFORE,
    HEADER_PARKED,
    HEADER_REASON,
    MemberEvent,
    dead_letter_reason,
    encode_event,
)
from sync_worker.queue.consumer import QueueWorker
from sync_worker.queue.topology import QueueTopology as Topology
from tests.integration.helpers import ScriptedHandler, eventually
from tests.unavailable import unavailable

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def topology(rabbitmq_url: str, unique_name: str) -> Iterator[Topology]:
    topology = Topology.named(unique_name)
    yield topology
    with Connection(rabbitmq_url) as connection:
        topology.delete(connection)


def publish(url: str, topology: Topology, bodies: Sequence[bytes], content_type: str = "application/json") -> None:
    with Connection(url) as connection:
        producer = Producer(connection.default_channel, exchange=topology.exchange)
        for entity in (topology.exchange, topology.work_queue, topology.delay_queue, topology.dead_queue):
            entity.bind(connection.default_channel).declare()
        for body in bodies:
            producer.publish(body, routing_key="work", content_type=content_type, content_encoding="utf-8")


def depth(url: str, queue: Queue) -> int:
    with Connection(url) as connection:
        _, count, _ = queue.bind(connection.default_channel).queue_declare(passive=True)
        return int(count)


@pytest.fixture
def run_worker_on(rabbitmq_url: str) -> Iterator[Callable[..., QueueWorker]]:
    started: list[tuple[QueueWorker, threading.Thread]] = []

    def start(topology: Topology, handler: ScriptedHandler, **options: object) -> QueueWorker:
        worker = QueueWorker(
            connection=Connection(rabbitmq_url, heartbeat=10),
            topology=topology,
            handler=handler,
            concurrency=int(options.pop("concurrency", 4)),  # type: ignore[call-overload]
            prefetch=int(options.pop("prefetch", 16)),  # type: ignore[call-overload]
            **options,  # type: ignore[arg-type]
        )
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        assert worker.connected.wait(10), "worker did not connect"
        started.append((worker, thread))
        return worker

    yield start
    for worker, thread in started:
        worker.stop()
        thread.join(15)


@pytest.fixture
def run_worker(topology: Topology, run_worker_on: Callable[..., QueueWorker]) -> Callable[..., QueueWorker]:
    return lambda handler, **options: run_worker_on(topology, handler, **options)


def event(member_number: str, **fields: object) -> MemberEvent:
    return MemberEvent(event_type="update", member_number=member_number, **fields)  # type: ignore[arg-type]


def test_every_message_is_handled_once_and_acked(rabbitmq_url: str, topology: Topology, run_worker) -> None:  # type: ignore[no-untyped-def]
    handler = ScriptedHandler()
    run_worker(handler)
    publish(rabbitmq_url, topology, [encode_event(event(f"296-{n}")) for n in range(200)])
    eventually(lambda: len(handler.handled_events) == 200)
    eventually(lambda: depth(rabbitmq_url, topology.work_queue) == 0)
    assert sorted(e.member_number for e in handler.handled_events) == sorted(f"296-{n}" for n in range(200))


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"{not json", "application/json", "body is not JSON"),
        (b"\x80\x04\x95\x00", "application/x-python-serialize", "content type 'application/x-python-serialize'"),
        (json.dumps({"schema_version": 9}).encode(), "application/json", "schema_version 9 is not supported"),
        (json.dumps({"schema_version": 1, "event_type": "update"}).encode(), "application/json", "member_number"),
        (b'{"padding": "' + b"x" * 10_000_000 + b'"}', "application/json", "over the 65536-byte limit"),
    ],
)
def test_a_poison_message_goes_to_the_dead_letter_queue_with_its_reason(  # type: ignore[no-untyped-def]
    rabbitmq_url: str, topology: Topology, run_worker, body: bytes, content_type: str, reason: str
) -> None:
    handler = ScriptedHandler()
    run_worker(handler)
    publish(rabbitmq_url, topology, [body], content_type=content_type)
    publish(rabbitmq_url, topology, [encode_event(event("296-after"))])
    eventually(lambda: [e.member_number for e in handler.handled_events] == ["296-after"])
    with Connection(rabbitmq_url) as connection:
        dead = topology.dead_queue.bind(connection.default_channel).get(no_ack=True)
        assert dead is not None
        raw = dead.body if isinstance(dead.body, bytes) else dead.body.encode()
        assert raw == body
        assert reason in dead.headers[HEADER_REASON]
        assert len(dead.headers[HEADER_LETTER_ID]) == 12  # the id operators replay or discard it by
    assert depth(rabbitmq_url, topology.work_queue) == 0


def test_a_retry_waits_in_the_delay_queue_without_blocking_others(  # type: ignore[no-untyped-def]
    rabbitmq_url: str, topology: Topology, run_worker
) -> None:
    from datetime import timedelta

    def decide(events: Sequence[MemberEvent]) -> Decision:
        first = events[0]
        if first.member_number == "296-slow" and first.attempt == 1:
            return Decision(
                "retry_later",
                "Retrying",
                retry_event=first.next_attempt(failed_at=first.emitted_at),
                delay=timedelta(seconds=1.5),
            )
        return Decision("ack", "Synced")

    handler = ScriptedHandler(decide)
    run_worker(handler)
    publish(rabbitmq_url, topology, [encode_event(event("296-slow"))])
    eventually(lambda: len(handler.handled_events) == 1)
    started = time.monotonic()
    publish(rabbitmq_url, topology, [encode_event(event("296-fast"))])
    eventually(lambda: any(e.member_number == "296-fast" for e in handler.handled_events))
    eventually(lambda: [e.attempt for e in handler.handled_events if e.member_number == "296-slow"] == [1, 2])
    assert time.monotonic() - started >= 1.0, "the retry came back before its delay"
    eventually(lambda: depth(rabbitmq_url, topology.delay_queue) == 0 and depth(rabbitmq_url, topology.work_queue) == 0)


def test_events_for_a_member_whose_sync_is_running_are_coalesced(  # type: ignore[no-untyped-def]
    rabbitmq_url: str, topology: Topology, run_worker
) -> None:
    handler = ScriptedHandler()
    handler.gate.clear()  # the first sync hangs until released
    run_worker(handler)
    publish(rabbitmq_url, topology, [encode_event(event("296-busy")) for _ in range(10)])
    assert handler.entered.wait(10), "the sync never started"
    time.sleep(0.5)  # the other nine arrive while the first sync hangs
    handler.gate.set()
    eventually(lambda: len(handler.handled_events) == 10)
    assert len(handler.batches) <= 2, f"10 events took {len(handler.batches)} syncs"
    eventually(lambda: depth(rabbitmq_url, topology.work_queue) == 0)


def test_stop_finishes_the_sync_in_flight_and_acks_it(rabbitmq_url: str, topology: Topology, run_worker) -> None:  # type: ignore[no-untyped-def]
    handler = ScriptedHandler()
    handler.gate.clear()
    worker = run_worker(handler)
    publish(rabbitmq_url, topology, [encode_event(event("296-inflight"))])
    assert handler.entered.wait(10), "the sync never started"
    worker.stop()
    handler.gate.set()
    eventually(lambda: len(handler.handled_events) == 1)
    eventually(lambda: depth(rabbitmq_url, topology.work_queue) == 0)


def test_a_message_a_dead_consumer_held_reaches_the_handler_marked_redelivered(  # type: ignore[no-untyped-def]
    rabbitmq_url: str, topology: Topology, run_worker
) -> None:
    publish(rabbitmq_url, topology, [encode_event(event("296-1"))])
    with Connection(rabbitmq_url) as dying:
        taken = threading.Event()
        with dying.Consumer([topology.work_queue], on_message=lambda message: taken.set()):
            dying.drain_events(timeout=5)
        assert taken.is_set()  # never acked: the connection closes, RabbitMQ requeues it as redelivered
    publish(rabbitmq_url, topology, [encode_event(event("296-2"))])
    handler = ScriptedHandler()
    run_worker(handler, concurrency=1, prefetch=1)
    eventually(lambda: len(handler.handled_events) == 2)
    flags = {batch[0].member_number: flag for batch, flag in zip(handler.batches, handler.redelivered, strict=True)}
    assert flags == {"296-1": True, "296-2": False}


def test_a_delayed_message_with_an_unreadable_header_is_dead_lettered_and_the_worker_goes_on(  # type: ignore[no-untyped-def]
    rabbitmq_url: str, topology: Topology, run_worker
) -> None:
    """Before, such a message crashed the worker at every start."""
    publish(rabbitmq_url, topology, [])  # declares the topology
    with Connection(rabbitmq_url) as connection:
        Producer(connection.default_channel, exchange=topology.exchange).publish(
            encode_event(event("296-bad-delay")),
            routing_key="delay",
            headers={HEADER_NOT_BEFORE: "tomorrow"},
            content_type="application/json",
            content_encoding="utf-8",
        )
    handler = ScriptedHandler()
    worker = run_worker(handler)
    publish(rabbitmq_url, topology, [encode_event(event("296-after"))])
    eventually(lambda: [e.member_number for e in handler.handled_events] == ["296-after"])
    eventually(lambda: depth(rabbitmq_url, topology.dead_queue) == 1)
    with Connection(rabbitmq_url) as connection:
        dead = topology.dead_queue.bind(connection.default_channel).get(no_ack=True)
        assert dead is not None
        assert HEADER_NOT_BEFORE in dead.headers[HEADER_REASON]
    assert worker.connected.is_set()


@pytest.fixture
def short_consumer_timeout() -> Iterator[None]:
    """RabbitMQ's consumer timeout at 3 s, checked every second, for the channels opened during the test: a stand-in
    for its 30-minute default, which closes a channel holding a message unacked longer and redelivers everything."""
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        unavailable("rabbitmqctl is not installed: cannot shorten RabbitMQ's consumer timeout")

    def set_env(key: str, value: int) -> None:
        subprocess.run(
            [rabbitmqctl, "eval", f"application:set_env(rabbit, {key}, {value})."],
            check=True,
            capture_output=True,
            timeout=60,
        )

    set_env("consumer_timeout", 3000)
    set_env("channel_tick_interval", 1000)
    try:
        yield
    finally:
        set_env("consumer_timeout", 1_800_000)
        set_env("channel_tick_interval", 60_000)


@pytest.mark.parametrize("max_hold", [60.0, 1.0])
def test_messages_that_cannot_start_are_parked_before_rabbitmq_gives_up_on_the_consumer(  # type: ignore[no-untyped-def]
    rabbitmq_url: str, topology: Topology, run_worker, short_consumer_timeout: None, max_hold: float
) -> None:
    """The breaker shut the gate for longer than RabbitMQ's consumer timeout. Held unacked (max_hold 60 s, longer
    than the 3 s timeout), the channel is closed under the worker; parked after 1 s, it never is, and once the gate
    opens every message is handled once."""
    gate = threading.Event()
    handler = ScriptedHandler()
    worker = run_worker(handler, may_start=gate.is_set, max_hold=max_hold)
    publish(rabbitmq_url, topology, [encode_event(event(f"296-{n}")) for n in range(3)])
    if max_hold > 3:
        eventually(lambda: worker.connections >= 2, timeout=30)  # RabbitMQ closed the channel; the worker came back
        return
    # Parked, back from the delay queue, parked again…: four rounds outlast the 3 s timeout and its 1 s check.
    eventually(lambda: worker.parked >= 12, timeout=30)
    assert worker.connections == 1
    gate.set()
    eventually(lambda: len(handler.handled_events) == 3, timeout=30)
    assert sorted(e.member_number for e in handler.handled_events) == ["296-0", "296-1", "296-2"]
    assert worker.connections == 1


def test_when_the_breaker_closes_parked_messages_go_back_to_work_at_once_and_retries_keep_their_time(  # type: ignore[no-untyped-def]
    rabbitmq_url: str, topology: Topology, run_worker
) -> None:
    """Parked while the breaker held them, a member would wait out its time (up to half of `max_hold`, minutes)
    after CrowdTwist's return; released, it is synced at once. A retry's wait is the member's own: it stays."""
    handler = ScriptedHandler()
    closed = threading.Event()
    workers: list[QueueWorker] = []

    def tick() -> None:  # the supervisor tells the consumer on its connection thread: so does this stand-in
        if closed.is_set() and workers:
            closed.clear()
            workers[0].release_parked()

    workers.append(run_worker(handler, on_tick=tick))
    in_an_hour = time.time() + 3600
    with Connection(rabbitmq_url) as connection:
        producer = Producer(connection.default_channel, exchange=topology.exchange)
        for body, headers in (
            (encode_event(event("296-parked")), {HEADER_NOT_BEFORE: in_an_hour, HEADER_PARKED: 1}),
            (encode_event(event("296-retry")), {HEADER_NOT_BEFORE: in_an_hour}),
        ):
            producer.publish(
                body, routing_key=topology.delay_queue.routing_key, headers=headers,
                content_type="application/json", content_encoding="utf-8",
            )  # fmt: skip
    eventually(lambda: depth(rabbitmq_url, topology.delay_queue) == 0)  # both held by the worker, until their time
    closed.set()
    eventually(lambda: [e.member_number for e in handler.handled_events] == ["296-parked"])
    assert not closed.is_set()


@pytest.fixture
def quorum_topology(rabbitmq_url: str, unique_name: str) -> Iterator[Topology]:
    """Set up before the worker fixture, so torn down after the worker stopped: its queues are never deleted under a
    running consumer."""
    topology = Topology.named(unique_name, queue_type="quorum", delivery_limit=2)
    yield topology
    with Connection(rabbitmq_url) as connection:
        topology.delete(connection)


def test_on_quorum_queues_a_message_a_worker_dies_on_every_time_ends_in_the_dead_letter_queue(
    rabbitmq_url: str,
    quorum_topology: Topology,
    run_worker_on,  # type: ignore[no-untyped-def]
) -> None:
    """A worker killed while it holds the message never acks nor dead-letters it; on a quorum queue RabbitMQ counts
    the deliveries and, at the limit, dead-letters it itself, so it cannot crash-loop every worker for ever."""
    topology = quorum_topology
    publish(rabbitmq_url, topology, [encode_event(event("296-poison"))])
    for _ in range(3):  # three deliveries, each to a consumer that dies holding it
        with Connection(rabbitmq_url) as dying:
            taken = threading.Event()
            with dying.Consumer([topology.work_queue], on_message=lambda message, taken=taken: taken.set()):
                dying.drain_events(timeout=10)
            assert taken.is_set()
    eventually(lambda: depth(rabbitmq_url, topology.dead_queue) == 1)
    assert depth(rabbitmq_url, topology.work_queue) == 0
    with Connection(rabbitmq_url) as connection:
        dead = topology.dead_queue.bind(connection.default_channel).get(no_ack=True)
        assert dead is not None
        assert dead_letter_reason(dead.headers).startswith("RabbitMQ dead-lettered it: delivered")
    handler = ScriptedHandler()
    run_worker_on(topology, handler)  # the worker runs on quorum queues as on classic ones
    publish(rabbitmq_url, topology, [encode_event(event("296-after"))])
    eventually(lambda: [e.member_number for e in handler.handled_events] == ["296-after"])
