"""Shared fixtures: a clean `CTSYNC_*` environment for every test, and real-server checks.

A test that needs a server skips with the reason when the server is absent locally, and fails when `CI` is set
(dramatiq's `check_rabbitmq` idea): a missing service in CI must never look like a pass.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import structlog

from sync_worker.ledger.runs import RunLedger
from tests.redis_server import private_redis  # noqa: F401  (a fixture: a Redis a test may stop and start)
from tests.unavailable import unavailable

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
POSTGRES_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's CTSYNC_* settings, and none writes into the working directory."""
    for name in list(os.environ):
        if name.startswith("CTSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CTSYNC_DATA_DIR", str(tmp_path_factory.mktemp("data")))


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    """Skip locally, fail in CI, when a server the test needs is not listening."""
    if _reachable(host, port):
        return
    unavailable(f"{name} is not reachable on {host}:{port}")


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    require_server("RabbitMQ", "127.0.0.1", 5672)
    return RABBITMQ_URL


@pytest.fixture
def postgres_url() -> str:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_URL


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """The URL of a PostgreSQL database of this test's own, dropped afterwards (with whoever is still connected)."""
    database = f"ctsync_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{database}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[RunLedger]:
    """Job runs and deliveries in an SQLite ledger of this test's own."""
    ledger = RunLedger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    yield ledger
    ledger.close()


@pytest.fixture
def unique_name() -> str:
    """A queue or table prefix of this test's own, so parallel runs on one broker never meet."""
    return f"ct-sync-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For a test that configures logging its own way: the process is left as it was found."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level
    structlog.reset_defaults()
