"""Worker-process tests' world: a data directory, a queue of its own, the CrowdTwist sandbox over HTTP, and
`ct-sync worker` started as a real subprocess with CTSYNC_* settings pointing at all of them."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from kombu.connection import Connection

from crowdtwist_client.sandbox import SandboxServer
from siebel_adapter.queue import KombuPublisher, QueueTopology
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.messages import MemberEvent
from tests.builders import siebel_member

CT_SYNC = str(Path(sys.executable).with_name("ct-sync"))


@dataclass
class Run:
    env: dict[str, str]
    store: SqliteMemberStore
    sandbox: SandboxServer
    topology: QueueTopology
    log: Path
    rabbitmq_url: str

    def start_worker(self, **extra_env: str) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as handle:  # the child keeps its own descriptor
            return subprocess.Popen(
                [CT_SYNC, "worker"], env={**self.env, **extra_env}, stdout=handle, stderr=subprocess.STDOUT
            )

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


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as systemd sends it; the exit code."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)
