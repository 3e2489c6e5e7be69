"""Bad input through a real `ct-sync worker` process: poison queue messages go to the dead-letter queue with their
reason while the worker goes on, and hostile member data read through Siebel REST is neither an injection nor a
crash: it is synced exactly as it is, or refused with a `Data Error` that names the field. The test prints what it
counted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kombu.connection import Connection
from kombu.messaging import Producer

from sandbox.servers import SiebelEmulatorServer
from sync_worker.core.messages import HEADER_REASON
from tests.builders import siebel_member
from tests.integration.helpers import eventually
from tests.integration.worker_process import Run, siebel_rest_settings, stop

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

POISON = [  # body, content type, what the dead letter's reason must say
    (b"{not json", "application/json", "body is not JSON"),
    (b"\x80\x04\x95\x00", "application/x-python-serialize", "content type 'application/x-python-serialize'"),
    (json.dumps({"schema_version": 9}).encode(), "application/json", "schema_version 9 is not supported"),
    (json.dumps({"schema_version": 1, "event_type": "update"}).encode(), "application/json", "member_number"),
    (b'{"padding": "' + b"x" * 10_000_000 + b'"}', "application/json", "over the 65536-byte limit"),
]

HOSTILE: dict[str, tuple[dict[str, Any], str, str | None]] = {
    # Member Number: (fields, CT Sync Status expected, what the CT Sync Error must name)
    "296-1": ({"First Name": "Plain"}, "Synced", None),
    "296-1' OR '1'='1": ({"First Name": "Quoted"}, "Synced", None),  # searchspec injection attempt
    "296-[2](*)": ({"First Name": "Bracketed"}, "Synced", None),
    "296-3": ({"First Name": "Ada\x07\x1b[2J"}, "Data Error", "First Name"),  # control characters
    "296-4": ({"Last Name": "x" * 10_000}, "Data Error", "Last Name is longer than 255"),
    "296-5": ({"First Name": "Zoë 😀"}, "Data Error", "First Name"),  # an emoji is not a letter
    "296-6": ({"First Name": "\u202eevil"}, "Data Error", "First Name"),  # right-to-left override
    "296-7": ({"First Name": "שרה", "Last Name": "عبد الله"}, "Synced", None),  # right-to-left letters are letters
}


def _publish_poison(run: Run) -> None:
    with Connection(run.rabbitmq_url) as connection:
        producer = Producer(connection.default_channel, exchange=run.topology.exchange)
        run.topology.declare(connection)  # the worker may not have declared them yet
        for body, content_type, _ in POISON:
            producer.publish(body, routing_key=run.topology.work_queue.routing_key, content_type=content_type,
                             content_encoding="binary", delivery_mode=2)  # fmt: skip


def _dead_letters(run: Run) -> list[tuple[bytes, str]]:
    letters = []
    with Connection(run.rabbitmq_url) as connection:
        queue = run.topology.dead_queue.bind(connection.default_channel)
        while (message := queue.get(no_ack=True)) is not None:
            body = message.body if isinstance(message.body, bytes) else message.body.encode()
            letters.append((body, message.headers[HEADER_REASON]))
    return letters


def test_poison_messages_are_dead_lettered_and_hostile_members_neither_inject_nor_crash(run: Run) -> None:
    for number, (fields, _, _) in HOSTILE.items():
        run.store.upsert_member(siebel_member(**{"Member Number": number, **fields}))
    with SiebelEmulatorServer(run.siebel_emulator()) as siebel:
        worker = run.start_worker(**siebel_rest_settings(siebel))
        _publish_poison(run)  # first in the queue: the members behind them must still be synced
        run.enroll_existing(list(HOSTILE))

        def statuses() -> dict[str, Any]:
            return {document["Member Number"]: document for document in run.store.documents()}

        eventually(lambda: all(doc.get("CT Sync Status") for doc in statuses().values()), timeout=60)
        assert stop(worker) == 0

    documents = statuses()
    letters = _dead_letters(run)
    outcomes = {number: documents[number].get("CT Sync Status") for number in HOSTILE}
    print(f"dead-lettered {len(letters)} of {len(POISON)} poison messages; members: {outcomes}")

    reasons = dict(letters)
    assert len(letters) == len(POISON)
    for body, _, reason in POISON:
        assert reason in reasons[body]  # kept byte for byte, for whoever inspects it, with its reason
    for number, (_fields, status, error) in HOSTILE.items():
        document = documents[number]
        assert document["CT Sync Status"] == status, (number, document.get("CT Sync Error"))
        if error is None:
            user = run.sandbox.state.user(number)
            assert user is not None  # under exactly its own Member Number: the quote matched nothing else
            assert user["first_name"] == document["First Name"]
        else:
            assert error in document["CT Sync Error"]
            assert run.sandbox.state.user(number) is None  # refused before any call
    assert run.sandbox.state.stats()["users"] == 4
    assert run.queue_depth() == 0
