"""The console's world: the real console app served on loopback over a data directory of the test's own (embedded
queue and ledger, the SQLite Siebel stand-in), the CrowdTwist sandbox, and, when a test asks, a real worker."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from config import Settings, load_settings
from sandbox.servers import SandboxServer
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.bootstrap import Worker, build_console, build_worker
from sync_worker.console.backend import ConsoleBackend
from sync_worker.core.messages import MemberEvent
from sync_worker.http import BackgroundServer
from sync_worker.queue.publisher import build_publisher
from tests.builders import PROGRAM, siebel_member

TOKEN = "console-token-for-tests"
TAKEN_EMAIL = "taken@example.com"


@dataclass
class World:
    settings: Settings
    store: SqliteMemberStore
    sandbox: SandboxServer
    backend: ConsoleBackend
    url: str
    worker: Worker | None = None
    _threads: list[threading.Thread] = field(default_factory=list)

    def add_member(self, number: str, **fields: str) -> None:
        self.store.upsert_member(siebel_member(**{"Member Number": number, "Id": f"1-{number}", **fields}))

    def publish(self, *numbers: str) -> None:
        publisher = build_publisher(self.settings)
        try:
            for number in numbers:
                publisher.publish(MemberEvent(event_type="enroll", member_number=number, source="intake"))
        finally:
            publisher.close()

    def status_of(self, number: str) -> str | None:
        member = self.store.get_member(number)
        return member.sync_status if member else None

    def start_worker(self) -> None:
        self.worker = build_worker(self.settings)
        thread = threading.Thread(target=self.worker.run, name="test-worker", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            for thread in self._threads:
                thread.join(30)
            self.worker.close()
            self.worker = None


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with SandboxServer() as sandbox:
        # Someone else already uses this email in CrowdTwist (enrolled on the website, say).
        taken = {"third_party_id": "WEB-1", "first_name": "J", "last_name": "Smith", "email_address": TAKEN_EMAIL}
        sandbox.state.handle("POST", "/v2/users", {}, {}, json.dumps(taken).encode())
        settings = load_settings(
            data_dir=tmp_path,
            crowdtwist={"base_url": sandbox.url, "api_key": "sandbox-key", "retry_max_time": "2s"},
            siebel={"program_id": PROGRAM},
            defaults={"email_domain": "members.example.com"},
            worker={"concurrency": 2, "prefetch": 8},
            console={"token": TOKEN},
        )
        store = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)
        app, backend = build_console(settings)
        with BackgroundServer(app) as server:
            made = World(settings, store, sandbox, backend, server.url)
            try:
                yield made
            finally:
                made.stop_worker()
                backend.close()
