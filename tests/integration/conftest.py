"""Fixtures for worker-process tests (see worker_process.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu.connection import Connection

from config import load_settings
from crowdtwist_client.sandbox import SandboxServer
from siebel_adapter.queue import QueueTopology
from siebel_adapter.sqlite_store import SqliteMemberStore
from tests.builders import PROGRAM
from tests.integration.worker_process import Run


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
