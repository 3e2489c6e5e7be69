"""The publisher: the event is really on the queue, JSON and persistent; a broker that cannot take it says so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu.connection import Connection

from config import load_settings
from sync_worker.core.errors import TransientError
from sync_worker.core.messages import MemberEvent, decode_event
from sync_worker.queue.broker import open_broker
from sync_worker.queue.publisher import KombuPublisher
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
