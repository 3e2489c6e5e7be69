"""`ct-sync worker` as a real process on a real RabbitMQ, against the CrowdTwist sandbox over HTTP:
killed mid-run, broker restarted, slow CrowdTwist, SIGTERM. Counts what was synced, lost and duplicated."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kombu.connection import Connection

from config import load_settings
from crowdtwist_client.sandbox import SandboxServer
from siebel_adapter.queue import KombuPublisher, QueueTopology
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.messages import MemberEvent
from tests.builders import PROGRAM, siebel_member
from tests.integration.helpers import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]
CT_SYNC = str(Path(sys.executable).with_name("ct-sync"))


@dataclass
class Run:
    env: dict[str, str]
    store: SqliteMemberStore
    sandbox: SandboxServer
    topology: QueueTopology
    log: Path
    rabbitmq_url: str

    def start_worker(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as handle:  # the child keeps its own descriptor
            return subprocess.Popen([CT_SYNC, "worker"], env=self.env, stdout=handle, stderr=subprocess.STDOUT)

    def enroll(self, count: int) -> list[str]:
        numbers = [f"296-{n:05d}" for n in range(count)]
        for number in numbers:
            self.store.upsert_member(
                siebel_member(**{"Member Number": number, "Email Address": f"{number}@example.com"})
            )
        publisher = KombuPublisher(
            Connection(self.rabbitmq_url, transport_options={"confirm_publish": True}), self.topology
        )
        publisher.publish_many(MemberEvent(event_type="enroll", member_number=n, source="poll") for n in numbers)
        publisher.close()
        return numbers

    def synced(self) -> int:
        return sum(1 for document in self.store.documents() if document.get("CT Sync Status") == "Synced")

    def queue_depth(self) -> int:
        with Connection(self.rabbitmq_url) as connection:
            return self.topology.depths(connection)[self.topology.work_queue.name]


@pytest.fixture
def run(rabbitmq_url: str, unique_name: str, tmp_path: Path) -> Iterator[Run]:
    with SandboxServer() as sandbox:
        env = {
            **{key: value for key, value in os.environ.items() if not key.startswith("CTSYNC_")},
            "CTSYNC_DATA_DIR": str(tmp_path),
            "CTSYNC_BROKER__URL": rabbitmq_url,
            "CTSYNC_BROKER__QUEUE": unique_name,
            "CTSYNC_BROKER__HEARTBEAT": "2",
            "CTSYNC_CROWDTWIST__BASE_URL": sandbox.url,
            "CTSYNC_SIEBEL__PROGRAM_ID": PROGRAM,
            "CTSYNC_WORKER__CONCURRENCY": "8",
            "CTSYNC_WORKER__PREFETCH": "32",
        }
        settings = load_settings(data_dir=tmp_path)
        store = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)
        topology = QueueTopology.named(unique_name)
        yield Run(env, store, sandbox, topology, tmp_path / "worker.log", rabbitmq_url)
        with Connection(rabbitmq_url) as connection:
            for queue in topology.queues:
                queue.bind(connection.default_channel).delete()
            topology.exchange.bind(connection.default_channel).delete()


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


def test_a_worker_killed_mid_run_loses_nothing_and_duplicates_nothing(run: Run) -> None:
    run.sandbox.state.set_faults(latency=0.02)
    numbers = run.enroll(400)
    for target in (60, 180):
        worker = run.start_worker()
        eventually(lambda target=target: run.synced() >= target, timeout=60)  # type: ignore[misc]
        worker.kill()  # SIGKILL: no goodbye, unacked messages go back to the queue
        worker.wait()
    worker = run.start_worker()
    eventually(lambda: run.synced() == len(numbers), timeout=120)
    assert _stop(worker) == 0
    stats = run.sandbox.state.stats()
    print(f"synced {run.synced()} of {len(numbers)}, creates {stats['creates']}, calls {stats['total_calls']}")
    assert stats["max_creates_per_third_party_id"] == 1
    assert all(run.sandbox.state.users_with_third_party_id(number) == 1 for number in numbers)
    assert run.queue_depth() == 0


def test_slow_crowdtwist_answers_keep_the_broker_connection(run: Run) -> None:
    run.sandbox.state.set_faults(latency=8.0)  # four heartbeat intervals of 2 s
    run.enroll(3)
    worker = run.start_worker()
    eventually(lambda: run.synced() == 3, timeout=60)
    assert _stop(worker) == 0
    log = run.log.read_text()
    assert "broker_connection_lost" not in log
    assert run.sandbox.state.stats()["creates"] == 3


def test_sigterm_finishes_the_syncs_in_flight_and_exits_cleanly(run: Run) -> None:
    run.sandbox.state.set_faults(latency=1.5)
    run.enroll(8)
    worker = run.start_worker()
    eventually(lambda: run.sandbox.state.stats()["total_calls"] >= 1, timeout=30)
    assert _stop(worker) == 0
    # Everything started was finished and acked; anything not started is still queued, nothing is lost.
    assert run.synced() + run.queue_depth() == 8


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="rabbitmqctl is needed to restart the broker")
def test_the_worker_reconnects_after_a_broker_restart(run: Run) -> None:
    run.sandbox.state.set_faults(latency=0.02)
    numbers = run.enroll(300)
    worker = run.start_worker()
    eventually(lambda: run.synced() >= 50, timeout=60)
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=60)
    time.sleep(1)
    subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=60)
    eventually(lambda: run.synced() == len(numbers), timeout=120)
    assert _stop(worker) == 0
    assert run.sandbox.state.stats()["max_creates_per_third_party_id"] == 1
    assert "broker_connection_lost" in run.log.read_text()
