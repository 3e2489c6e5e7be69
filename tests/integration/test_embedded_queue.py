"""The embedded SQLite queue: acks delete rows, and a killed consumer's messages come back."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.messaging import Consumer, Producer

from config import load_settings
from sync_worker.core.messages import MemberEvent, encode_event
from sync_worker.queue.broker import EmbeddedTransport, open_broker, reclaim_unacked
from sync_worker.queue.consumer import QueueWorker
from sync_worker.queue.topology import QueueTopology as Topology
from tests.integration.helpers import ScriptedHandler, eventually

CT_SYNC = str(Path(sys.executable).with_name("ct-sync"))
EXCHANGE = Exchange("ct-sync-test", type="direct", durable=True)
QUEUE = Queue("ct-sync-test", EXCHANGE, routing_key="work", durable=True)


def _connection(data_dir: Path) -> Connection:
    return open_broker(load_settings(data_dir=data_dir))


def _rows(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "queue.sqlite") as db:
        return int(db.execute("select count(*) from kombu_message").fetchone()[0])


def _publish(connection: Connection, count: int) -> None:
    producer = Producer(connection.default_channel, exchange=EXCHANGE)
    QUEUE.bind(connection.default_channel).declare()
    for number in range(count):
        producer.publish({"n": number}, routing_key="work", serializer="json", delivery_mode=2)


def _take(connection: Connection, count: int, *, ack: bool) -> list[int]:
    taken: list[int] = []
    done = threading.Event()

    def on_message(message) -> None:  # type: ignore[no-untyped-def]
        taken.append(message.decode()["n"])
        if ack:
            message.ack()
        if len(taken) == count:
            done.set()

    with Consumer(connection.channel(), queues=[QUEUE], on_message=on_message, accept=["json"]):
        while not done.is_set():
            connection.drain_events(timeout=5)
    return taken


def test_the_default_broker_is_the_embedded_queue(tmp_path: Path) -> None:
    assert isinstance(_connection(tmp_path).transport, EmbeddedTransport)


def test_an_acked_message_is_deleted_from_the_file(tmp_path: Path) -> None:
    with _connection(tmp_path) as connection:
        _publish(connection, 5)
        assert _rows(tmp_path) == 5
        assert sorted(_take(connection, 5, ack=True)) == [0, 1, 2, 3, 4]
    assert _rows(tmp_path) == 0


def test_messages_held_by_a_killed_consumer_are_reclaimed(tmp_path: Path) -> None:
    with _connection(tmp_path) as connection:
        _publish(connection, 3)
    crashed = _connection(tmp_path)
    _take(crashed, 3, ack=False)
    # The process dies here: no channel close, nothing restored. The rows stay, invisible.
    assert _rows(tmp_path) == 3
    with _connection(tmp_path) as connection:
        assert reclaim_unacked(connection) == 3
        assert sorted(_take(connection, 3, ack=True)) == [0, 1, 2]
    assert _rows(tmp_path) == 0


def test_the_worker_consumes_from_the_embedded_queue(tmp_path: Path) -> None:
    topology = Topology.named("ct-sync-embedded")
    with _connection(tmp_path) as connection:
        producer = Producer(connection.default_channel, exchange=topology.exchange)
        topology.work_queue.bind(connection.default_channel).declare()
        for number in range(50):
            producer.publish(
                encode_event(MemberEvent(event_type="update", member_number=f"296-{number}")),
                routing_key="work",
                content_type="application/json",
                content_encoding="utf-8",
            )
    handler = ScriptedHandler()
    worker = QueueWorker(
        connection=_connection(tmp_path), topology=topology, handler=handler, concurrency=4, prefetch=8
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        eventually(lambda: len(handler.handled_events) == 50)
        eventually(lambda: _rows(tmp_path) == 0)
    finally:
        worker.stop()
        thread.join(10)
    assert len({event.member_number for event in handler.handled_events}) == 50


def test_a_reclaimed_message_reaches_the_handler_marked_redelivered(tmp_path: Path) -> None:
    """What the killed worker did with it is unknown: the next sync must trust nothing (no create first)."""
    topology = Topology.named("ct-sync-embedded")
    with _connection(tmp_path) as connection:
        topology.declare(connection)
        Producer(connection.default_channel, exchange=topology.exchange).publish(
            encode_event(MemberEvent(event_type="enroll", member_number="296-1")),
            routing_key="work",
            content_type="application/json",
            content_encoding="utf-8",
        )
    crashed = _connection(tmp_path)
    held = threading.Event()
    with Consumer(crashed.channel(), queues=[topology.work_queue], on_message=lambda message: held.set()):
        crashed.drain_events(timeout=5)
    assert held.is_set()  # taken, never acked; the process "dies" here
    handler = ScriptedHandler()
    with _connection(tmp_path) as connection:
        reclaim_unacked(connection)
    worker = QueueWorker(
        connection=_connection(tmp_path), topology=topology, handler=handler, concurrency=1, prefetch=1
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        eventually(lambda: len(handler.handled_events) == 1)
    finally:
        worker.stop()
        thread.join(10)
    assert handler.redelivered == [True]


def test_a_second_worker_on_the_same_embedded_queue_is_refused_and_leaves_the_first_alone(tmp_path: Path) -> None:
    """It would reclaim the first worker's messages in flight: one clear line, exit 2, the first goes on."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CTSYNC_")}, "CTSYNC_DATA_DIR": str(tmp_path)}
    first = subprocess.Popen([CT_SYNC, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        eventually(lambda: (tmp_path / "worker.lock").exists() and "pid" in (tmp_path / "worker.lock").read_text())
        second = subprocess.run([CT_SYNC, "worker"], env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert f"pid {first.pid}" in second.stderr
        assert "embedded queue" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
