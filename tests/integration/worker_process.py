"""Worker-process tests' world: a data directory, a queue of its own, the CrowdTwist sandbox over HTTP, and
`ct-sync worker` started as a real subprocess with CTSYNC_* settings pointing at all of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kombu.connection import Connection

from sandbox.servers import SandboxServer, SiebelEmulatorServer
from sandbox.siebel.emulator import SiebelEmulator
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.core.messages import MemberEvent
from sync_worker.queue.publisher import KombuPublisher
from sync_worker.queue.topology import QueueTopology
from tests.builders import PROGRAM, siebel_member

CT_SYNC = str(Path(sys.executable).with_name("ct-sync"))
SIEBEL_USERNAME, SIEBEL_PASSWORD = "CTSYNC", "emulator-pw"


def ct_sync_environment(data_dir: Path, rabbitmq_url: str, queue: str, **settings: str) -> dict[str, str]:
    """The environment of a `ct-sync` subprocess: this one's, minus any CTSYNC_* of the developer, plus a data
    directory and a queue of the test's own, and `settings`."""
    return {
        **{key: value for key, value in os.environ.items() if not key.startswith("CTSYNC_")},
        "CTSYNC_DATA_DIR": str(data_dir),
        "CTSYNC_BROKER__URL": rabbitmq_url,
        "CTSYNC_BROKER__QUEUE": queue,
        "CTSYNC_SIEBEL__PROGRAM_ID": PROGRAM,
        **settings,
    }


@dataclass
class Run:
    env: dict[str, str]
    store: SqliteMemberStore
    sandbox: SandboxServer
    topology: QueueTopology
    log: Path
    rabbitmq_url: str
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self, **extra_env: str) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as handle:  # the child keeps its own descriptor
            worker = subprocess.Popen(
                [CT_SYNC, "worker"], env={**self.env, **extra_env}, stdout=handle, stderr=subprocess.STDOUT
            )
        self.workers.append(worker)
        return worker

    def kill_leftover_workers(self) -> None:
        """After a test that failed before stopping its worker: kill it, so it cannot outlive the test (and its
        queue), and show the end of its log."""
        leftovers = [worker for worker in self.workers if worker.poll() is None]
        for worker in leftovers:
            worker.kill()
            worker.wait()
        if leftovers and self.log.exists():
            print("worker log, last 40 lines:", *self.log.read_text().splitlines()[-40:], sep="\n")

    def enroll(self, count: int) -> list[str]:
        numbers = [f"296-{n:05d}" for n in range(count)]
        for number in numbers:
            self.store.upsert_member(
                siebel_member(**{"Member Number": number, "Email Address": f"{number}@example.com"})
            )
        self.enroll_existing(numbers)
        return numbers

    def enroll_existing(self, numbers: list[str]) -> None:
        """Enroll events for members already in the Siebel stand-in."""
        self.publish([MemberEvent(event_type="enroll", member_number=n, source="poll") for n in numbers])

    def publish(self, events: list[MemberEvent]) -> None:
        publisher = KombuPublisher(
            Connection(self.rabbitmq_url, transport_options={"confirm_publish": True}), self.topology
        )
        publisher.publish_many(events)
        publisher.close()

    def siebel_emulator(self) -> SiebelEmulator:
        """Siebel's REST API over this run's member store, with the credentials `siebel_rest_settings` gives."""
        return SiebelEmulator(self.store, username=SIEBEL_USERNAME, password=SIEBEL_PASSWORD)

    @property
    def outbox(self) -> Path:
        """Where the worker's alerts go when no SMTP server is set."""
        return self.log.parent / "outbox"

    def synced(self) -> int:
        return sum(1 for document in self.store.documents() if document.get("CT Sync Status") == "Synced")

    def dead_letters(self) -> int:
        with Connection(self.rabbitmq_url) as connection:
            return self.topology.depths(connection)[self.topology.dead_queue.name]

    def queue_depth(self) -> int:
        with Connection(self.rabbitmq_url) as connection:
            return self.topology.depths(connection)[self.topology.work_queue.name]


def siebel_rest_settings(server: SiebelEmulatorServer) -> dict[str, str]:
    """Worker settings that read and write members through the emulated Siebel REST API."""
    return {
        "CTSYNC_SIEBEL__BACKEND": "rest",
        "CTSYNC_SIEBEL__BASE_URL": server.base_url,
        "CTSYNC_SIEBEL__USERNAME": SIEBEL_USERNAME,
        "CTSYNC_SIEBEL__PASSWORD": SIEBEL_PASSWORD,
    }


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as systemd sends it; the exit code."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)
