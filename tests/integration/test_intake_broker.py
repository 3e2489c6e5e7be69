"""`ct-sync intake` as a real process in front of a broker that goes silent (it accepts the connection and never
confirms): the request is answered 503 within the confirm timeout, never held for ever; the OIC Failure is written,
recorded, counted and `/readyz` turns red; SIGTERM finishes the requests in flight and exits 0. Under a burst, the
events share confirms and each request is still answered for its own event: 500 at once are 500 queued, and a
broker that goes silent mid-burst gets 503s, never a 202 for an event that is not on the queue."""

from __future__ import annotations

import asyncio
import queue
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from kombu.connection import Connection

from config import load_settings
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.core.messages import decode_event
from sync_worker.entrypoints.intake import EVENTS_PATH
from sync_worker.queue.topology import QueueTopology
from tests.alerts.conftest import free_port
from tests.builders import siebel_member
from tests.integration.helpers import eventually
from tests.integration.proxy import SilenceableProxy
from tests.integration.worker_process import CT_SYNC, ct_sync_environment

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


@dataclass
class Running:
    url: str
    process: subprocess.Popen[bytes]
    proxy: SilenceableProxy
    store: SqliteMemberStore
    data_dir: Path


@pytest.fixture
def intake(rabbitmq_url: str, unique_name: str, tmp_path: Path) -> Iterator[Running]:
    with SilenceableProxy(("127.0.0.1", 5672)) as proxy:
        port = free_port()  # after the proxy took its port: a free port asked for first could be handed to it
        env = ct_sync_environment(
            tmp_path,
            f"amqp://guest:guest@127.0.0.1:{proxy.port}//",
            unique_name,
            CTSYNC_INTAKE__PORT=str(port),
            CTSYNC_BROKER__CONFIRM_TIMEOUT="2s",
        )
        store = SqliteMemberStore(load_settings(data_dir=tmp_path).siebel_sqlite_path, load_settings().siebel)
        with (tmp_path / "intake.log").open("wb") as log:  # the child keeps its own descriptor
            process = subprocess.Popen([CT_SYNC, "intake"], env=env, stdout=log, stderr=subprocess.STDOUT)
        running = Running(f"http://127.0.0.1:{port}", process, proxy, store, tmp_path)
        try:
            eventually(lambda: _answers(f"{running.url}/healthz"), timeout=30)
            yield running
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(30)
            with Connection(rabbitmq_url) as connection:
                QueueTopology.named(unique_name).delete(connection)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _post(running: Running, number: str) -> httpx.Response:
    document = running.store.document(number) or {}
    return httpx.post(f"{running.url}{EVENTS_PATH}", json={"event": "update", "member": document}, timeout=60)


def test_a_silent_broker_is_answered_503_within_the_confirm_timeout_and_turns_readiness_red(intake: Running) -> None:
    intake.store.upsert_member(siebel_member(**{"Member Number": "296-1"}))
    intake.store.upsert_member(siebel_member(**{"Member Number": "296-2"}))
    assert _post(intake, "296-1").status_code == 202
    intake.proxy.silent.set()
    refused = _post(intake, "296-2")
    assert refused.status_code == 503
    assert "did not confirm within 2 s" in refused.json()["detail"]
    assert (intake.store.document("296-2") or {}).get("CT Sync Status") == "OIC Failure"
    ready = httpx.get(f"{intake.url}/readyz", timeout=30)
    assert ready.status_code == 503
    assert ready.json()["publisher"] is False
    metrics = httpx.get(f"{intake.url}/metrics", timeout=10).text
    assert 'ct_sync_intake_answers_total{status="503"} 1.0' in metrics
    assert 'ct_sync_intake_answers_total{status="202"} 1.0' in metrics
    with sqlite3.connect(intake.data_dir / "ledger.sqlite") as db:
        rows = db.execute("SELECT member_number, outcome, source FROM ct_sync_attempts").fetchall()
    assert rows == [("296-2", "OIC Failure", "intake")]


def test_sigterm_answers_the_requests_in_flight_and_exits_0(intake: Running) -> None:
    intake.store.upsert_member(siebel_member(**{"Member Number": "296-3"}))
    assert _post(intake, "296-3").status_code == 202  # connected to the broker
    intake.proxy.silent.set()
    answers: list[int] = []
    in_flight = threading.Thread(target=lambda: answers.append(_post(intake, "296-3").status_code))
    in_flight.start()
    eventually(lambda: intake.proxy.sent_while_silent > 0)  # the publish is out: the request waits for a confirm
    intake.process.send_signal(signal.SIGTERM)
    in_flight.join(30)
    assert answers == [503]
    assert intake.process.wait(timeout=60) == 0


def test_a_broker_silent_from_the_first_byte_is_answered_503_too(intake: Running) -> None:
    """It accepts the TCP connection and never answers the AMQP handshake: the connect timeout ends the wait."""
    intake.store.upsert_member(siebel_member(**{"Member Number": "296-4"}))
    intake.proxy.silent.set()
    assert _post(intake, "296-4").status_code == 503
    assert (intake.store.document("296-4") or {}).get("CT Sync Status") == "OIC Failure"


def _queued_event_ids(rabbitmq_url: str, queue: str) -> list[str]:
    """Every event id on the work queue, read from the broker directly (not through the proxy)."""
    ids = []
    with Connection(rabbitmq_url) as connection:
        work_queue = QueueTopology.named(queue).work_queue.bind(connection.default_channel)
        while (message := work_queue.get(no_ack=True)) is not None:
            ids.append(decode_event(message.body).event_id)
    return ids


def test_500_events_posted_at_once_are_500_messages_on_the_queue(
    intake: Running, rabbitmq_url: str, unique_name: str
) -> None:
    bodies = [{"event": "update", "member": siebel_member(**{"Member Number": f"296-{n:05d}"})} for n in range(500)]

    async def post_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=500)
        async with httpx.AsyncClient(base_url=intake.url, timeout=60, limits=limits) as client:
            return await asyncio.gather(*(client.post(EVENTS_PATH, json=body) for body in bodies))

    answers = asyncio.run(post_all())
    assert [answer.status_code for answer in answers] == [202] * 500
    answered = [answer.json()["event_id"] for answer in answers]
    queued = _queued_event_ids(rabbitmq_url, unique_name)
    assert len(queued) == 500
    assert sorted(queued) == sorted(answered)  # 500 distinct ids, each answered 202 once


def test_a_broker_silent_mid_burst_answers_503_and_never_202_for_an_event_not_queued(
    intake: Running, rabbitmq_url: str, unique_name: str
) -> None:
    numbers = [f"296-{n:04d}" for n in range(400)]
    for number in numbers:
        intake.store.upsert_member(siebel_member(**{"Member Number": number}))
    to_post: queue.SimpleQueue[str] = queue.SimpleQueue()
    for number in numbers:
        to_post.put(number)
    answers: dict[str, httpx.Response] = {}

    def post_until_refused() -> None:
        """One of Siebel's connections: posts member after member, and stops at its first refusal."""
        while True:
            try:
                number = to_post.get_nowait()
            except queue.Empty:
                return
            answers[number] = _post(intake, number)
            if answers[number].status_code != 202:
                return

    with ThreadPoolExecutor(32) as pool:
        posting = [pool.submit(post_until_refused) for _ in range(32)]
        eventually(lambda: sum(answer.status_code == 202 for answer in list(answers.values())) >= 50)
        intake.proxy.silent.set()  # while batches are out: their confirms never arrive
        for done in posting:
            done.result()

    statuses = [answer.status_code for answer in answers.values()]
    assert set(statuses) == {202, 503}
    assert intake.proxy.sent_while_silent > 0  # events were published into the silence
    accepted = {answer.json()["event_id"] for answer in answers.values() if answer.status_code == 202}
    assert accepted <= set(_queued_event_ids(rabbitmq_url, unique_name))  # every 202 is on the queue
    refused = [number for number, answer in answers.items() if answer.status_code == 503]
    assert {(intake.store.document(number) or {}).get("CT Sync Status") for number in refused} == {"OIC Failure"}
