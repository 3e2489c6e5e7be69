"""The intake as it runs in production: `ct-sync intake` as a real subprocess publishing to RabbitMQ.

Fuzzed from the OpenAPI document it serves, and with hostile member payloads: never a 5xx, and after every answer
the queue holds exactly one event per accepted request. Its bearer token, and its refusal to bind beyond loopback
without one, seen from outside.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kombu.connection import Connection

from sync_worker.entrypoints.intake import EVENTS_PATH, openapi_document
from sync_worker.queue.topology import QueueTopology
from tests.alerts.conftest import free_port
from tests.builders import siebel_member
from tests.integration.helpers import eventually
from tests.integration.worker_process import CT_SYNC, ct_sync_environment
from tests.security.test_intake_fuzz import FIELDS, HOSTILE

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

TOKEN = "intake-token-4d1f"


@dataclass
class Intake:
    url: str
    rabbitmq_url: str
    topology: QueueTopology
    accepted: int = 0  # requests answered 202, each of which must have queued exactly one event
    answers: dict[int, int] = field(default_factory=dict)

    def answered(self, response: httpx.Response | Any) -> None:
        """Count the answer, then check the queue: one event per accepted request so far, nothing for a refusal
        (publishing is confirmed by the broker before the intake answers 202)."""
        self.answers[response.status_code] = self.answers.get(response.status_code, 0) + 1
        if response.status_code == 202:
            self.accepted += 1
        assert self.queued() == self.accepted

    def queued(self) -> int:
        with Connection(self.rabbitmq_url) as connection:
            return self.topology.depths(connection)[self.topology.work_queue.name]


@contextmanager
def _intake_process(tmp_path: Path, rabbitmq_url: str, queue: str, **extra: str) -> Iterator[Intake]:
    """`ct-sync intake` on a free port, publishing to a queue of its own (declared first, so an empty one can be
    counted); the queue is deleted afterwards."""
    port = free_port()
    env = ct_sync_environment(tmp_path, rabbitmq_url, queue, CTSYNC_INTAKE__PORT=str(port), **extra)
    running = Intake(f"http://127.0.0.1:{port}", rabbitmq_url, QueueTopology.named(queue))
    with Connection(rabbitmq_url) as connection:
        running.topology.declare(connection)
    process = subprocess.Popen([CT_SYNC, "intake"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        eventually(lambda: _healthy(f"{running.url}/healthz"), timeout=30)
        yield running
    finally:
        process.terminate()
        process.wait(30)
        with Connection(rabbitmq_url) as connection:
            running.topology.delete(connection)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def intake(rabbitmq_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Intake]:
    queue = f"ct-sync-test-intake-{os.getpid()}"
    with _intake_process(tmp_path_factory.mktemp("intake"), rabbitmq_url, queue) as running:
        yield running
        print(f"intake answers {dict(sorted(running.answers.items()))}; queued {running.queued()}")


schema = schemathesis.openapi.from_dict(openapi_document())


def test_it_serves_the_document_the_fuzzing_is_generated_from(intake: Intake) -> None:
    assert httpx.get(f"{intake.url}/openapi.json").json() == openapi_document()


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzzing_from_its_document_finds_no_5xx(case: Any, intake: Intake) -> None:
    response = case.call(base_url=intake.url)
    intake.answered(response)
    assert response.status_code < 500


@given(changes=st.dictionaries(st.sampled_from(FIELDS), HOSTILE, max_size=4), event=st.sampled_from(["enroll", "x"]))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_hostile_payloads_get_a_clear_answer(intake: Intake, changes: dict[str, Any], event: str) -> None:
    body = {"event": event, "member": {**siebel_member(), **changes}}
    response = httpx.post(f"{intake.url}{EVENTS_PATH}", content=json.dumps(body),
                          headers={"content-type": "application/json"})  # fmt: skip
    intake.answered(response)
    assert response.status_code in (202, 413, 422), response.text
    if response.status_code == 422:
        assert response.json()["detail"], "a refusal must say what is wrong"


def test_a_token_is_required_once_set(rabbitmq_url: str, unique_name: str, tmp_path: Path) -> None:
    body = {"event": "enroll", "member": siebel_member()}
    with _intake_process(tmp_path, rabbitmq_url, unique_name, CTSYNC_INTAKE__TOKEN=TOKEN) as running:
        url = f"{running.url}{EVENTS_PATH}"
        refused = [
            httpx.post(url, json=body).status_code,
            httpx.post(url, json=body, headers={"authorization": "Bearer wrong"}).status_code,
            httpx.post(url, json=body, headers={"authorization": TOKEN}).status_code,  # no scheme
        ]
        queued_after_refusals = running.queued()
        accepted = httpx.post(url, json=body, headers={"authorization": f"Bearer {TOKEN}"}).status_code
        queued = running.queued()
    assert refused == [401, 401, 401]
    assert queued_after_refusals == 0
    assert (accepted, queued) == (202, 1)


def test_it_will_not_bind_beyond_loopback_without_a_token(rabbitmq_url: str, tmp_path: Path) -> None:
    env = ct_sync_environment(tmp_path, rabbitmq_url, "unused", CTSYNC_INTAKE__HOST="0.0.0.0")
    finished = subprocess.run([CT_SYNC, "intake"], env=env, capture_output=True, text=True, timeout=60)
    assert finished.returncode != 0
    assert "CTSYNC_INTAKE__TOKEN" in finished.stderr
    assert "0.0.0.0" in finished.stderr
