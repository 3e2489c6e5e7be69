"""Correct data under real conditions, through real `ct-sync` processes on RabbitMQ: a poll that reads while the
worker's write-backs move rows, and a write whose answer is lost while another worker sends newer data.
Each test prints what it counted."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.crowdtwist import create_sandbox_app
from sandbox.servers import SiebelEmulatorServer
from sync_worker.http import BackgroundServer
from tests.builders import siebel_member
from tests.integration.helpers import eventually
from tests.integration.worker_process import CT_SYNC, Run, siebel_rest_settings, stop

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


def test_a_poll_while_the_worker_writes_back_publishes_every_member(run: Run) -> None:
    """Real Siebel bumps Updated on every write, so the worker's write-backs move rows to the end of the change
    order while `poll` pages through it: every eligible member must still be published and synced."""
    numbers = [f"296-{n:05d}" for n in range(240)]
    for number in numbers:
        run.store.upsert_member(siebel_member(**{"Member Number": number, "Email Address": f"{number}@example.com"}))
    run.store.upsert_member(siebel_member(**{"Member Type": "Household"}))  # not eligible: skipped, not published
    emulator = run.siebel_emulator()
    emulator.latency = 0.01  # a Siebel that takes its time, so the worker writes back between the poll's pages
    with SiebelEmulatorServer(emulator) as siebel:
        rest = {**siebel_rest_settings(siebel), "CTSYNC_SIEBEL__PAGE_SIZE": "20"}
        worker = run.start_worker(**rest)
        poll = subprocess.run([CT_SYNC, "poll"], env={**run.env, **rest}, capture_output=True, text=True, timeout=120)
        assert poll.returncode == 0, poll.stderr
        eventually(lambda: run.synced() == len(numbers), timeout=120)
        assert stop(worker) == 0
    stats = run.sandbox.state.stats()
    print(f"poll: {poll.stdout.strip()}; synced {run.synced()}/{len(numbers)}; creates {stats['creates']}")
    # Members the worker wrote back while the poll read moved behind it and were read again: harmless duplicates.
    published = int(poll.stdout.split("published ")[1].split(",")[0])
    assert published >= len(numbers)
    assert stats["creates"] == len(numbers)
    assert stats["max_creates_per_third_party_id"] == 1


def _answers_late(app: Any, *, when: Callable[[str, str, bytes], bool], seconds: float, seen: threading.Event) -> Any:
    """An ASGI wrapper: requests matching `when` are applied at once, but their answer waits `seconds` (longer than
    the client's timeout): CrowdTwist stored the write, the worker never heard."""

    async def late(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""

        async def recording_receive() -> Any:
            nonlocal body
            message = await receive()
            body += message.get("body", b"")
            return message

        async def delaying_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and when(scope["method"], scope["path"], body):
                seen.set()
                await asyncio.sleep(seconds)
            await send(message)

        await app(scope, recording_receive, delaying_send)

    return late


def test_a_lost_answer_never_lets_an_older_state_win_over_a_newer_one(run: Run) -> None:
    """Two workers. One sends member M's older state ("Old"); CrowdTwist applies it but the answer is lost. The other
    worker meanwhile sends the newer state ("New"). The first worker's retry must not re-send "Old", and must not
    trust the ledger's "unchanged" either: CrowdTwist ends with "New"."""
    [number] = run.enroll(1)
    first = run.start_worker()
    eventually(lambda: run.synced() == 1, timeout=60)  # M exists in CrowdTwist and the ledger knows it
    assert stop(first) == 0
    old_put = threading.Event()

    def old_state_of_m(method: str, path: str, body: bytes) -> bool:
        return method == "PUT" and path.endswith(number) and json.loads(body or b"{}").get("last_name") == "Old"

    late = _answers_late(create_sandbox_app(run.sandbox.state), when=old_state_of_m, seconds=4.0, seen=old_put)
    with BackgroundServer(late) as crowdtwist:
        one_at_a_time = {
            "CTSYNC_CROWDTWIST__BASE_URL": crowdtwist.url,
            "CTSYNC_CROWDTWIST__TIMEOUT": "1s",
            "CTSYNC_CROWDTWIST__RETRY_ATTEMPTS": "2",
            "CTSYNC_WORKER__RETRY_FIRST_DELAY": "1s",
            # Each worker holds one message: while one waits on the lost answer, the other takes the next event.
            "CTSYNC_WORKER__CONCURRENCY": "1",
            "CTSYNC_WORKER__PREFETCH": "1",
        }
        workers = [run.start_worker(**one_at_a_time) for _ in range(2)]
        row = run.store.document(number) or {}
        run.store.upsert_member({**row, "Last Name": "Old"})
        run.enroll_existing([number])
        assert old_put.wait(60)  # CrowdTwist has "Old"; its answer is on its way, too late
        run.store.upsert_member({**(run.store.document(number) or {}), "Last Name": "New"})
        run.enroll_existing([number])
        eventually(lambda: (run.sandbox.state.user(number) or {}).get("last_name") == "New", timeout=60)
        # Let every retry of the "Old" event run its course, then look again.
        eventually(lambda: run.queue_depth() == 0 and "Retrying" not in _last_outcomes(run, number), timeout=60)
        for worker in workers:
            assert stop(worker) == 0
    user = run.sandbox.state.user(number) or {}
    print(f"CrowdTwist holds last_name={user.get('last_name')!r}; Siebel {run.store.document(number)}")
    assert user.get("last_name") == "New"
    assert (run.store.document(number) or {}).get("CT Sync Status") == "Synced"
    assert run.sandbox.state.users_with_third_party_id(number) == 1


def _last_outcomes(run: Run, number: str) -> list[str]:
    """The outcome of the newest attempt of each event for the member (a retried event ends Synced, not Retrying)."""
    with sqlite3.connect(run.env["CTSYNC_DATA_DIR"] + "/ledger.sqlite") as db:
        rows = db.execute(
            "SELECT outcome FROM ct_sync_attempts a WHERE member_number = ? AND id = "
            "(SELECT max(id) FROM ct_sync_attempts b WHERE b.event_id = a.event_id)",
            (number,),
        ).fetchall()
    return [outcome for (outcome,) in rows]
