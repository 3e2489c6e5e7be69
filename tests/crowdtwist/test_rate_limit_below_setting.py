"""The real client, its pacer and retries, against the in-process sandbox limited far below ct-sync's setting: 600
calls a minute against the default 10,000 × 0.75. Four threads enroll members at once, in virtual time
(`tests.virtual_time`): the sandbox's leaky bucket, the pacer, the retry waits and each answer's latency all run on
one clock that moves only when every thread sleeps, so the run takes a fraction of a second and the same on any
machine. The retry waits' jitter is seeded, so the run is the same every time (over forty seeds: 1.8 to 2.4 % of
calls refused, 556 to 566 calls a minute settled)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pytest

from crowdtwist_client.client import CrowdTwistClient
from crowdtwist_client.pacing import Pacer
from sandbox.crowdtwist import SandboxState, SandboxTransport
from sync_worker.core.ct_user import UserPayload
from sync_worker.core.errors import RateLimited
from tests.virtual_time import VirtualTime

LIMIT = 600  # CrowdTwist's, per minute
MEMBERS = 320
THREADS = 4
LATENCY = 0.05  # seconds from a request leaving to its answer coming back


class Answering(httpx.BaseTransport):
    """The sandbox's answer after `LATENCY` of virtual time."""

    def __init__(self, state: SandboxState, time: VirtualTime) -> None:
        self._sandbox = SandboxTransport(state)
        self._time = time

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._sandbox.handle_request(request)
        self._time.sleep(LATENCY)
        return response


@pytest.fixture
def seeded_jitter() -> Iterator[None]:
    """tenacity draws its jitter from `random`'s shared generator."""
    state = random.getstate()
    random.seed(29)
    yield
    random.setstate(state)


def payload(number: int) -> UserPayload:
    return UserPayload(
        third_party_id=f"296-{number:07d}",
        first_name="Ann",
        last_name=f"Lee{number}",
        email_address=f"ann.{number}@example.com",
    )


@pytest.mark.usefixtures("seeded_jitter")
def test_few_calls_are_refused_and_every_member_is_enrolled() -> None:
    time = VirtualTime()
    crowdtwist = SandboxState(clock=time.monotonic)
    crowdtwist.set_faults(rate_limit_per_minute=LIMIT)
    pacer = Pacer(10_000 * 0.75, clock=time.monotonic, sleep=time.sleep)
    client = CrowdTwistClient(
        base_url="https://sb-api306.crowdtwist.com",
        api_key=None,
        pacer=pacer,
        transport=Answering(crowdtwist, time),
        sleep=time.sleep,
    )
    waiting = list(range(MEMBERS))
    retried_later: list[int] = []

    def enroll() -> None:
        while waiting:
            number = waiting.pop(0)
            try:
                client.create_user(payload(number))
            except RateLimited:  # the client's own retries spent: the worker would redeliver it later
                retried_later.append(number)
                waiting.append(number)

    time.run([enroll] * THREADS)
    stats = crowdtwist.stats()
    calls, refused = stats["total_calls"], stats["rate_limited"]
    print(f"{calls} calls, {refused} answered 429 ({refused / calls:.1%}), settled at {pacer.rate_per_minute:.0f}/min")
    assert calls >= 300
    assert refused / calls <= 0.05
    assert stats["creates"] == stats["users"] == MEMBERS  # each member enrolled, once
    assert retried_later == []  # and none needed more than the client's own retries
    assert 0.9 * LIMIT <= pacer.rate_per_minute < LIMIT  # settled just under CrowdTwist's limit
