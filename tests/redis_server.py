"""A Redis server of the test's own (`redis-server` on a free port, nothing kept on disk), so a test can stop and
start it; the machine's Redis on 6379 is never touched."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.alerts.conftest import free_port
from tests.integration.helpers import eventually
from tests.unavailable import unavailable


class PrivateRedis:
    def __init__(self, binary: str) -> None:
        self._binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        eventually(self.answers, timeout=15)

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(15)
            self._process = None

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.exceptions.ConnectionError:
            return False


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed: the shared-budget tests need a Redis of their own")
    server = PrivateRedis(binary)
    server.start()
    yield server
    server.stop()
