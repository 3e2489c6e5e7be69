"""Prometheus metrics (own registry, no globals) and the health server: `/metrics`, `/healthz`, `/readyz`.

Labels never carry URLs, secrets or Member Numbers (cardinality, privacy).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

BREAKER_STATES = {"closed": 0, "open": 1, "half-open": 2}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_consumed = Counter("ct_sync_events_consumed", "Queue messages handled", registry=r)
        self.outcomes = Counter("ct_sync_outcomes", "Sync outcomes by status", ["outcome"], registry=r)
        self.crowdtwist_calls = Counter(
            "ct_sync_crowdtwist_calls", "CrowdTwist HTTP calls", ["operation", "status"], registry=r
        )
        self.retries = Counter("ct_sync_retries", "Messages sent to the delay queue for a later retry", registry=r)
        self.dead_lettered = Counter("ct_sync_dead_lettered", "Messages sent to the dead-letter queue", registry=r)
        self.breaker_state = Gauge("ct_sync_breaker_state", "0 closed, 1 open, 2 half-open", registry=r)
        self.pacing_wait = Counter("ct_sync_pacing_wait_seconds", "Time spent waiting for the rate budget", registry=r)
        self.latency = Histogram(
            "ct_sync_end_to_end_seconds",
            "Event emitted → outcome written",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.queue_depth = Gauge("ct_sync_queue_depth", "Messages ready in a queue", ["queue"], registry=r)

    def observe_call(self, operation: str, status: int | None, _seconds: float) -> None:
        self.crowdtwist_calls.labels(operation=operation, status=str(status) if status else "none").inc()

    def set_breaker(self, state: str) -> None:
        self.breaker_state.set(BREAKER_STATES.get(state, -1))

    def set_depths(self, depths: dict[str, int]) -> None:
        for queue, depth in depths.items():
            self.queue_depth.labels(queue=queue).set(depth)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every 15 s are not news."""


class HealthServer:
    """`/metrics`, `/healthz` (alive) and `/readyz` (200 when every check passes, else 503 with the checks)."""

    def __init__(
        self,
        *,
        metrics: Metrics | None,
        readiness: Callable[[], dict[str, bool]],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        metrics_app = make_wsgi_app(metrics.registry) if metrics else None

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/metrics" and metrics_app is not None:
                return metrics_app(environ, start_response)  # type: ignore[no-any-return]
            if path == "/healthz":
                return _json(start_response, 200, {"status": "alive"})
            if path == "/readyz":
                checks = readiness()
                return _json(start_response, 200 if all(checks.values()) else 503, checks)
            return _json(start_response, 404, {"error": "not found"})

        self._host = host
        self._server: WSGIServer = make_server(host, port, app, handler_class=_Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, name="ct-sync-health", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_port}"

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _json(start_response: Callable[..., Any], status: int, document: dict[str, Any]) -> list[bytes]:
    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
    start_response(f"{status} {reason}", [("Content-Type", "application/json")])
    return [json.dumps(document).encode()]
