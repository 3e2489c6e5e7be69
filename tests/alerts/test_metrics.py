"""Metrics and health over HTTP."""

from __future__ import annotations

import httpx

from sync_worker.http import HealthServer
from sync_worker.metrics import Metrics


def test_recorded_counts_are_scraped_over_http() -> None:
    metrics = Metrics()
    metrics.outcomes.labels(outcome="Synced").inc(3)
    metrics.observe_call("update_user", 200, 0.01)
    metrics.set_depths({"ct-sync.member-events": 7})
    server = HealthServer(registry=metrics.registry, readiness=lambda: {"broker": True}).start()
    try:
        text = httpx.get(server.url + "/metrics").text
    finally:
        server.stop()
    assert 'ct_sync_outcomes_total{outcome="Synced"} 3.0' in text
    assert 'ct_sync_crowdtwist_calls_total{operation="update_user",status="200"} 1.0' in text
    assert 'ct_sync_queue_depth{queue="ct-sync.member-events"} 7.0' in text


def test_readyz_turns_503_when_a_check_fails() -> None:
    checks = {"broker": True, "crowdtwist": True}
    server = HealthServer(registry=None, readiness=lambda: dict(checks)).start()
    try:
        assert httpx.get(server.url + "/healthz").status_code == 200
        assert httpx.get(server.url + "/readyz").status_code == 200
        checks["crowdtwist"] = False
        answer = httpx.get(server.url + "/readyz")
        assert answer.status_code == 503
        assert answer.json() == {"broker": True, "crowdtwist": False}
    finally:
        server.stop()
