"""Many workers (issue 21), as real `ct-sync worker` processes: three on one RabbitMQ queue, one CrowdTwist budget
shared through Redis, one member at a time across them. One is killed mid-run and Redis is stopped mid-run.
The test prints what it counted."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any
from urllib.parse import unquote

import pytest

from sandbox.crowdtwist import create_sandbox_app
from sync_worker.core.messages import MemberEvent
from sync_worker.http import BackgroundServer
from tests.builders import siebel_member
from tests.integration.helpers import eventually
from tests.integration.worker_process import Run, stop
from tests.redis_server import PrivateRedis

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


class OverlapWatch:
    """An ASGI wrapper in front of the sandbox: how many requests for one member were in CrowdTwist at once."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._now: Counter[str] = Counter()
        self.most = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        messages = []
        while True:  # read the body first, to learn whom a create is for
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        member = _member_of(scope, body)
        with self._lock:
            self._now[member] += 1
            self.most = max(self.most, self._now[member]) if member else self.most

        async def replay() -> Any:
            return messages.pop(0) if messages else await receive()

        try:
            await self._app(scope, replay, send)
        finally:
            with self._lock:
                self._now[member] -= 1


def _member_of(scope: dict[str, Any], body: bytes) -> str:
    if scope.get("type") != "http" or not scope["path"].startswith("/v2/users"):
        return ""
    parts = [part for part in scope["path"].split("/") if part]
    if len(parts) >= 3:
        return unquote(parts[2])
    try:
        return str(json.loads(body or b"{}").get("third_party_id") or "")
    except ValueError:
        return ""


def test_three_workers_share_one_budget_one_member_at_a_time_through_a_kill_and_a_redis_outage(
    run: Run, private_redis: PrivateRedis
) -> None:
    # CrowdTwist answers in 300 ms: longer than the 67 ms between two calls of the budget, so calls overlap.
    run.sandbox.state.set_faults(rate_limit_per_minute=1200, latency=0.3)
    watch = OverlapWatch(create_sandbox_app(run.sandbox.state))
    numbers = [f"296-{n:05d}" for n in range(240)]
    for number in numbers:
        run.store.upsert_member(siebel_member(**{"Member Number": number, "Email Address": f"{number}@example.com"}))
    with BackgroundServer(watch) as crowdtwist:
        shared = {
            "CTSYNC_CROWDTWIST__BASE_URL": crowdtwist.url,
            "CTSYNC_CROWDTWIST__REQUESTS_PER_MINUTE": "1200",  # the sandbox's limit; our share 0.75: 15 calls/s
            "CTSYNC_CROWDTWIST__BUDGET_URL": private_redis.url,
            "CTSYNC_CROWDTWIST__FALLBACK_PROCESSES": "3",
        }
        workers = [run.start_worker(**shared) for _ in range(3)]  # started together: one schema, set up once
        eventually(lambda: run.log.read_text().count('"worker_consuming"') == 3, timeout=60)  # then RabbitMQ deals
        # Each member's enroll and an update one after the other: the queue hands them to two different workers, who
        # without the member locks sync that member at the same moment.
        run.publish(
            [
                MemberEvent(event_type=kind, member_number=number, source="poll")
                for number in numbers
                for kind in ("enroll", "update")
            ]
        )
        eventually(lambda: run.synced() >= 60, timeout=120)
        workers[0].kill()  # its members in flight go back to the queue and to the others
        workers[0].wait()
        eventually(lambda: run.synced() >= 120, timeout=120)
        private_redis.stop()  # each survivor paces alone at a third of the budget: together still within it
        eventually(lambda: run.synced() == len(numbers), timeout=180)
        eventually(lambda: run.queue_depth() == 0, timeout=60)  # the duplicates retried while busy, handled too
        for worker in workers[1:]:
            assert stop(worker) == 0
    stats = run.sandbox.state.stats()
    alerts = [mail.read_text() for mail in (run.log.parent / "outbox").glob("*.eml")]
    unshared = sum("shared CrowdTwist budget unreachable" in mail for mail in alerts)
    print(
        f"synced {run.synced()}/{len(numbers)}; creates {stats['creates']}, most for one member "
        f"{stats['max_creates_per_third_party_id']}; 429s {stats['rate_limited']}; calls {stats['total_calls']}; "
        f"most requests for one member at once {watch.most}; budget-unreachable alerts {unshared}"
    )
    assert stats["rate_limited"] == 0
    assert stats["max_creates_per_third_party_id"] == 1
    assert watch.most == 1
    assert unshared == 2  # one from each surviving worker
