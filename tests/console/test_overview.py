"""The overview page: each worker's outage breaker as the ledger has it, an open one with when syncing paused and
when CrowdTwist is probed next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.console.conftest import TOKEN, World

NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_an_open_breaker_says_since_when_syncing_is_paused_and_when_the_next_probe_is(world: World) -> None:
    operations = world.backend.operations
    operations.record_breaker("host-a:1", "started", at=NOON)
    operations.record_breaker("host-a:1", "opened", at=NOON, cause="HTTP 503", since=NOON)
    operations.record_breaker(
        "host-a:1",
        "probe_scheduled",
        at=NOON + timedelta(seconds=40),
        cause="connection refused",
        since=NOON,
        next_probe_at=NOON + timedelta(seconds=57),
    )
    operations.record_breaker("host-b:2", "started", at=NOON)
    with httpx.Client(base_url=world.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        page = client.get("/")
    assert page.status_code == 200
    assert "paused since 2026-11-22 12:00:00, next probe at 2026-11-22 12:00:57: connection refused" in page.text
    assert 'data-state="open"' in page.text
    assert 'data-state="closed"' in page.text  # host-b syncs
