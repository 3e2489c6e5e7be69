"""The dead-letter queue adapter on both brokers a user runs (the embedded queue and a real RabbitMQ): reading takes
nothing off, replay and discard act on the letters named and no others."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu.connection import Connection

from config import load_settings
from sync_worker.core.messages import HEADER_DEAD_AT, HEADER_LETTER_ID, HEADER_REASON, decode_event
from sync_worker.queue.broker import open_broker
from sync_worker.queue.dead_letters import DeadLetterQueue
from sync_worker.queue.publisher import KombuPublisher
from sync_worker.queue.topology import QueueTopology


class Broker:
    """A topology of this test's own on one broker, with a way to put dead letters in and read the work queue."""

    def __init__(self, connect: Connection, topology: QueueTopology) -> None:
        self.connect = connect
        self.topology = topology
        self.letters = DeadLetterQueue(lambda: self.connect.clone(), topology)

    def dead_letter(self, letter_id: str, body: bytes, reason: str = "refused") -> None:
        """As the worker dead-letters a message: its body, and headers with the reason, time and id."""
        with self.connect.clone() as connection:
            self.topology.declare(connection)
            connection.Producer(exchange=self.topology.exchange).publish(
                body, routing_key=self.topology.dead_queue.routing_key, content_type="application/json",
                content_encoding="utf-8", delivery_mode=2,
                headers={HEADER_REASON: reason, HEADER_DEAD_AT: 1_795_000_000.0, HEADER_LETTER_ID: letter_id},
            )  # fmt: skip

    def queued(self) -> list[str]:
        with self.connect.clone() as connection:
            queue = self.topology.work_queue.bind(connection.default_channel)
            numbers = []
            while (message := queue.get(no_ack=True)) is not None:
                numbers.append(decode_event(message.body).member_number)
            return numbers

    def publisher(self) -> KombuPublisher:
        return KombuPublisher(self.connect.clone(), self.topology)


@pytest.fixture(params=["embedded", "rabbitmq"])
def broker(request: pytest.FixtureRequest, tmp_path: Path, unique_name: str) -> Iterator[Broker]:
    if request.param == "embedded":
        settings = load_settings(data_dir=tmp_path)
    else:
        settings = load_settings(data_dir=tmp_path, broker={"url": request.getfixturevalue("rabbitmq_url")})
    topology = QueueTopology.named(unique_name)
    connection = open_broker(settings)
    yield Broker(connection, topology)
    if request.param == "rabbitmq":  # the embedded queue goes with the test's folder
        with connection.clone() as cleanup:
            topology.delete(cleanup)
    connection.release()


def event_body(number: str) -> bytes:
    return json.dumps({"schema_version": 1, "member_number": number, "event_type": "bogus"}).encode()


def test_reading_the_dead_letters_takes_none_off_the_queue_and_keeps_their_order(broker: Broker) -> None:
    for index in range(5):
        broker.dead_letter(f"id-{index}", event_body(f"296-{index}"))
    first = [letter.letter_id for letter in broker.letters.peek(limit=3)]
    again = [letter.letter_id for letter in broker.letters.peek(limit=10)]
    assert first == ["id-0", "id-1", "id-2"]
    assert again == ["id-0", "id-1", "id-2", "id-3", "id-4"]
    assert broker.letters.count() == 5
    assert broker.letters.depths() == {"work": 0, "delay": 0, "dead": 5}


def test_replaying_one_letter_queues_its_member_and_leaves_the_others(broker: Broker) -> None:
    broker.dead_letter("keep-1", event_body("296-1"))
    broker.dead_letter("replay-me", event_body("296-2"), reason="Siebel refused the write-back 3 times")
    broker.dead_letter("keep-3", event_body("296-3"))
    publisher = broker.publisher()
    result = broker.letters.replay(["replay-me"], publisher)
    publisher.close()
    assert [(letter.letter_id, letter.member_number) for letter in result.done] == [("replay-me", "296-2")]
    assert result.done[0].reason == "Siebel refused the write-back 3 times"
    assert broker.queued() == ["296-2"]
    assert [letter.letter_id for letter in broker.letters.peek(limit=10)] == ["keep-1", "keep-3"]


def test_replaying_every_letter_leaves_those_that_name_no_member(broker: Broker) -> None:
    broker.dead_letter("a", event_body("296-1"))
    broker.dead_letter("unreadable", b"{not json")
    broker.dead_letter("b", event_body("296-2"))
    publisher = broker.publisher()
    result = broker.letters.replay(None, publisher)
    publisher.close()
    assert sorted(broker.queued()) == ["296-1", "296-2"]
    assert [letter.letter_id for letter in result.left] == ["unreadable"]
    assert [letter.letter_id for letter in broker.letters.peek(limit=10)] == ["unreadable"]


def test_discarding_removes_only_the_named_letters_and_names_the_ids_not_found(broker: Broker) -> None:
    broker.dead_letter("a", event_body("296-1"))
    broker.dead_letter("b", b"{not json")
    broker.dead_letter("c", event_body("296-3"))
    result = broker.letters.discard(["b", "c", "no-such-id"])
    assert sorted(letter.letter_id for letter in result.done) == ["b", "c"]
    assert result.missing == ["no-such-id"]
    assert [letter.letter_id for letter in broker.letters.peek(limit=10)] == ["a"]
    assert broker.queued() == []
