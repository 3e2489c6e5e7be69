"""The publisher: the event is really on the queue, JSON and persistent; a broker that cannot take it says so.
Confirms come per batch: each event is settled by its own confirm, a nack or a silence fails exactly the events it
covers, and events handed in while a batch is out travel together in the next one."""

from __future__ import annotations

import json
import socket
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kombu.connection import Connection

from config import load_settings
from sync_worker.core.errors import TransientError
from sync_worker.core.messages import MemberEvent, decode_event
from sync_worker.queue.broker import open_broker, publishing_in_one_transaction
from sync_worker.queue.publisher import AmqpConfirms, Batches, ConfirmTimeout, KombuPublisher, Pending
from sync_worker.queue.topology import QueueTopology


@pytest.fixture
def topology(rabbitmq_url: str, unique_name: str) -> Iterator[QueueTopology]:
    topology = QueueTopology.named(unique_name)
    yield topology
    with Connection(rabbitmq_url) as connection:
        topology.delete(connection)


@pytest.mark.rabbitmq
def test_a_published_event_is_on_the_queue_as_persistent_json(rabbitmq_url: str, topology: QueueTopology) -> None:
    event = MemberEvent(event_type="enroll", member_number="296-2185770", row_id="1-ABC", source="intake")
    publisher = KombuPublisher(Connection(rabbitmq_url, transport_options={"confirm_publish": True}), topology)
    publisher.publish(event)
    publisher.close()
    with Connection(rabbitmq_url) as connection:
        message = topology.work_queue.bind(connection.default_channel).get(no_ack=True)
    assert message is not None
    assert message.content_type == "application/json"
    assert message.properties["delivery_mode"] == 2
    assert decode_event(message.body) == event
    assert json.loads(message.body)["schema_version"] == 1


@pytest.mark.rabbitmq
def test_publish_many_confirms_every_event(rabbitmq_url: str, topology: QueueTopology) -> None:
    publisher = KombuPublisher(Connection(rabbitmq_url, transport_options={"confirm_publish": True}), topology)
    events = [MemberEvent(event_type="update", member_number=f"296-{n}") for n in range(100)]
    assert publisher.publish_many(events) == 100
    with Connection(rabbitmq_url) as connection:
        assert topology.depths(connection)[topology.work_queue.name] == 100
    publisher.close()


@pytest.mark.rabbitmq
def test_a_connection_that_went_stale_between_batches_is_replaced(rabbitmq_url: str, topology: QueueTopology) -> None:
    connection = Connection(rabbitmq_url, transport_options={"confirm_publish": True})
    publisher = KombuPublisher(connection, topology)
    publisher.publish(MemberEvent(event_type="update", member_number="296-1"))
    connection.connection.sock.shutdown(socket.SHUT_RDWR)  # as a broker restart or a dropped link leaves it
    publisher.publish(MemberEvent(event_type="update", member_number="296-2"))
    publisher.close()
    with Connection(rabbitmq_url) as check:
        assert topology.depths(check)[topology.work_queue.name] == 2
    assert not publisher.failing


def test_an_unreachable_broker_is_reported_not_hidden(unique_name: str) -> None:
    publisher = KombuPublisher(
        Connection("amqp://guest:secretpw@127.0.0.1:1//", connect_timeout=1), QueueTopology.named(unique_name)
    )
    with pytest.raises(TransientError, match="queue unavailable") as caught:
        publisher.publish(MemberEvent(event_type="update", member_number="296-1"))
    assert "secretpw" not in str(caught.value)


def test_the_embedded_queue_takes_events(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    topology = QueueTopology.from_settings(settings.broker)
    publisher = KombuPublisher(open_broker(settings), topology)
    publisher.publish(MemberEvent(event_type="update", member_number="296-1"))
    with open_broker(settings) as connection:
        message = topology.work_queue.bind(connection.default_channel).get(no_ack=True)
        assert decode_event(message.body).member_number == "296-1"
    publisher.close()


# -- batched confirms, against a scripted broker ------------------------------------------------------------------


SILENCE = object()


class ScriptedBroker:
    """An AMQP channel in confirm mode whose broker answers from a script: each read delivers the next list of
    (method, delivery tag, multiple), or raises what the script holds; at SILENCE, or with the script done, the read
    finds nothing until it times out (on a clock of its own, so no test waits)."""

    def __init__(self, answers: list[list[tuple[str, int, bool]] | BaseException | object]) -> None:
        self.events: defaultdict[str, set[Callable[[int, bool], None]]] = defaultdict(set)
        self.published: list[bytes] = []
        self.confirm_mode = False
        self.now = 0.0
        self._answers = answers

    def confirm_select(self) -> None:
        self.confirm_mode = True

    def prepare_message(self, body: bytes, *_args: Any) -> bytes:
        return body

    def _basic_publish(self, msg: bytes, exchange: str = "", routing_key: str = "") -> None:
        self.published.append(msg)

    def drain(self, timeout: float) -> None:
        answer = self._answers.pop(0) if self._answers else SILENCE
        if answer is SILENCE:
            self.now += timeout
            raise TimeoutError("nothing to read")
        if isinstance(answer, BaseException):
            raise answer
        assert isinstance(answer, list)
        for method, tag, multiple in answer:
            for callback in list(self.events[f"basic_{method}"]):
                callback(tag, multiple)


def confirms(broker: ScriptedBroker) -> AmqpConfirms:
    return AmqpConfirms(broker, broker.drain, exchange="x", routing_key="k", clock=lambda: broker.now)


def publish_and_collect(sender: AmqpConfirms, batch: list[Pending]) -> None:
    sender.publish(batch, confirm_timeout=5)
    while sender.unconfirmed:
        sender.collect(1)


def outcomes(batch: list[Pending]) -> list[str]:
    return ["pending" if not item.future.done() else "nack" if item.future.exception() else "ok" for item in batch]


def test_a_nack_fails_exactly_the_event_it_names() -> None:
    broker = ScriptedBroker([[("ack", 2, True)], [("nack", 3, False)], [("ack", 5, True)]])
    batch = [Pending(f"event {n}".encode()) for n in range(1, 6)]
    publish_and_collect(confirms(broker), batch)
    assert broker.confirm_mode
    assert broker.published == [item.body for item in batch]
    assert outcomes(batch) == ["ok", "ok", "nack", "ok", "ok"]
    refusal = batch[2].future.exception()
    assert isinstance(refusal, TransientError)
    assert "the broker refused the event" in refusal.message


def test_a_multiple_nack_fails_every_event_up_to_its_tag_and_only_those() -> None:
    broker = ScriptedBroker([[("nack", 2, True), ("ack", 3, False)]])
    batch = [Pending(b"a"), Pending(b"b"), Pending(b"c")]
    publish_and_collect(confirms(broker), batch)
    assert outcomes(batch) == ["nack", "nack", "ok"]


def test_delivery_tags_continue_across_batches_and_confirms_may_cover_several() -> None:
    broker = ScriptedBroker([[("ack", 1, False)], SILENCE, [("nack", 3, False), ("ack", 4, True)]])
    sender = confirms(broker)
    first, second = [Pending(b"1"), Pending(b"2")], [Pending(b"3"), Pending(b"4")]
    sender.publish(first, confirm_timeout=5)
    sender.collect(1)  # the first batch is half confirmed when the second goes out
    assert outcomes(first) == ["ok", "pending"]
    publish_and_collect(sender, second)
    assert outcomes(first + second) == ["ok", "ok", "nack", "ok"]


def test_a_connection_lost_mid_batch_leaves_the_acked_events_confirmed_and_the_rest_unsettled() -> None:
    broker = ScriptedBroker([[("ack", 2, True)], ConnectionResetError("reset by peer")])
    batch = [Pending(f"{n}".encode()) for n in range(4)]
    with pytest.raises(ConnectionResetError):
        publish_and_collect(confirms(broker), batch)
    assert outcomes(batch) == ["ok", "ok", "pending", "pending"]  # the publisher retries or fails these two


def test_a_broker_that_stops_confirming_is_found_silent_at_the_confirm_timeout() -> None:
    broker = ScriptedBroker([[("ack", 1, False)]])
    batch = [Pending(b"1"), Pending(b"2")]
    with pytest.raises(ConfirmTimeout):
        publish_and_collect(confirms(broker), batch)
    assert broker.now == 5  # read until the deadline, and no longer
    assert outcomes(batch) == ["ok", "pending"]


# -- the batching thread, with a scripted sender --------------------------------------------------------------------


class GatedSender:
    """Records each batch it is given; holds the first one until `release` is set; confirms every event except
    those whose body is in `refuse`."""

    def __init__(self, refuse: frozenset[bytes] = frozenset()) -> None:
        self.batches: list[list[bytes]] = []
        self.first_taken = threading.Event()
        self.release = threading.Event()
        self.refuse = refuse

    def __call__(self, batch: list[Pending]) -> None:
        self.batches.append([item.body for item in batch])
        self.first_taken.set()
        self.release.wait(30)
        for item in batch:
            if item.body in self.refuse:
                item.refused("the broker refused the event (nack)")
            else:
                item.confirmed()


def test_events_handed_in_while_a_batch_is_out_travel_together_in_the_next_one() -> None:
    sender = GatedSender()
    batches = Batches(sender, max_batch=500, name="test-publisher")
    first = batches.submit([b"first"])
    sender.first_taken.wait(30)
    waiting = [batches.submit([f"event {n}".encode()])[0] for n in range(20)]
    sender.release.set()
    for item in [*first, *waiting]:
        item.future.result(30)
    batches.close()
    assert sender.batches == [[b"first"], [f"event {n}".encode() for n in range(20)]]


def test_a_batch_is_bounded() -> None:
    sender = GatedSender()
    batches = Batches(sender, max_batch=3, name="test-publisher")
    batches.submit([b"first"])
    sender.first_taken.wait(30)
    waiting = batches.submit([f"{n}".encode() for n in range(7)])
    sender.release.set()
    for item in waiting:
        item.future.result(30)
    batches.close()
    assert [len(batch) for batch in sender.batches] == [1, 3, 3, 1]


def test_each_caller_hears_its_own_outcome() -> None:
    sender = GatedSender(refuse=frozenset({b"bad"}))
    sender.release.set()
    batches = Batches(sender, name="test-publisher")
    good, bad = batches.submit([b"good", b"bad"])
    assert good.future.result(30) is None
    with pytest.raises(TransientError, match="refused"):
        bad.future.result(30)
    batches.close()


def test_a_sender_that_breaks_fails_its_batch_instead_of_leaving_callers_waiting() -> None:
    def broken(batch: list[Pending]) -> None:
        batch[0].confirmed()
        raise RuntimeError("a bug")

    batches = Batches(broken, name="test-publisher")
    confirmed, unsettled = batches.submit([b"1", b"2"])
    assert confirmed.future.result(30) is None
    with pytest.raises(TransientError, match="a bug"):
        unsettled.future.result(30)
    batches.close()


def test_a_caller_that_gave_up_before_its_batch_left_is_not_published() -> None:
    sender = GatedSender()
    batches = Batches(sender, name="test-publisher")
    batches.submit([b"first"])
    sender.first_taken.wait(30)
    abandoned, kept = batches.submit([b"abandoned", b"kept"])
    assert abandoned.future.cancel()
    sender.release.set()
    kept.future.result(30)
    batches.close()
    assert sender.batches == [[b"first"], [b"kept"]]


def test_close_publishes_what_is_waiting_and_a_later_event_starts_the_thread_again() -> None:
    sender = GatedSender()
    sender.release.set()
    batches = Batches(sender, name="test-publisher")
    before = batches.submit([b"before"])
    batches.close()
    assert before[0].future.done()
    after = batches.submit([b"after"])
    assert after[0].future.result(30) is None
    batches.close()


# -- both brokers ---------------------------------------------------------------------------------------------------


def test_the_embedded_queue_stores_a_batch_all_or_nothing(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    topology = QueueTopology.from_settings(settings.broker)
    with open_broker(settings) as connection:
        topology.declare(connection)
        channel = connection.default_channel

        def two_then_a_break() -> None:
            with publishing_in_one_transaction(channel):
                for body in (b'{"n": 1}', b'{"n": 2}'):
                    message = channel.prepare_message(body)
                    channel.basic_publish(
                        message, exchange=topology.exchange.name, routing_key=topology.work_queue.routing_key
                    )
                raise RuntimeError("the batch breaks before its commit")

        with pytest.raises(RuntimeError):
            two_then_a_break()
        assert topology.depths(connection)[topology.work_queue.name] == 0


@pytest.mark.parametrize("broker", ["embedded", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def test_concurrent_publishers_each_get_their_event_queued_once(
    broker: str, request: pytest.FixtureRequest, tmp_path: Path, unique_name: str
) -> None:
    if broker == "rabbitmq":
        settings = load_settings(data_dir=tmp_path, broker={"url": request.getfixturevalue("rabbitmq_url")})
    else:
        settings = load_settings(data_dir=tmp_path)
    topology = QueueTopology.named(unique_name)
    publisher = KombuPublisher(open_broker(settings), topology)
    events = [MemberEvent(event_type="update", member_number=f"296-{n}") for n in range(400)]
    try:
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(publisher.publish, events))
        publisher.close()
        with open_broker(settings) as connection:
            queue = topology.work_queue.bind(connection.default_channel)
            queued = []
            while (message := queue.get(no_ack=True)) is not None:
                queued.append(decode_event(message.body).event_id)
    finally:
        if broker == "rabbitmq":
            with Connection(settings.broker_url) as connection:
                topology.delete(connection)
    assert sorted(queued) == sorted(event.event_id for event in events)
