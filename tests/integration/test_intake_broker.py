"""`ct-sync intake` as a real process in front of a broker that goes silent (it accepts the connection and never
confirms): the request is answered 503 within the confirm timeout, never held for ever; the OIC Failure is written,
recorded, counted and `/readyz` turns red; SIGTERM finishes the requests in flight and exits 0."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from kombu.connection import Connection

from config import load_settings
from siebel_adapter.sqlite_store import SqliteMemberStore
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
    port = free_port()
    with SilenceableProxy(("127.0.0.1", 5672)) as proxy:
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
