"""Fixtures for worker-process tests (see worker_process.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu.connection import Connection

from config import load_settings
from sandbox.servers import SandboxServer
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.queue.topology import QueueTopology
from tests.integration.worker_process import Run, ct_sync_environment


@pytest.fixture
def run(rabbitmq_url: str, unique_name: str, tmp_path: Path) -> Iterator[Run]:
    with SandboxServer() as sandbox:
        env = ct_sync_environment(
            tmp_path,
            rabbitmq_url,
            unique_name,
            CTSYNC_BROKER__HEARTBEAT="2",
            CTSYNC_CROWDTWIST__BASE_URL=sandbox.url,
            CTSYNC_WORKER__CONCURRENCY="8",
            CTSYNC_WORKER__PREFETCH="32",
        )
        settings = load_settings(data_dir=tmp_path)
        store = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)
        topology = QueueTopology.named(unique_name)
        run = Run(env, store, sandbox, topology, tmp_path / "worker.log", rabbitmq_url)
        yield run
        run.kill_leftover_workers()
        with Connection(rabbitmq_url) as connection:
            topology.delete(connection)
