"""Prometheus metrics on a registry of their own (no globals); `sync_worker.http` serves them on `/metrics`.

Labels never carry URLs, secrets or Member Numbers (cardinality, privacy).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
        self.siebel_calls = Counter(
            "ct_sync_siebel_calls", "Requests to Siebel (or its stand-in) by kind: read, write", ["kind"], registry=r
        )
        self.in_flight_limit = Gauge(
            "ct_sync_in_flight_limit", "Syncs allowed at once: the budget's calls/s × seconds per sync", registry=r
        )
        self.crowdtwist_pace = Gauge(
            "ct_sync_crowdtwist_pace_per_minute",
            "CrowdTwist calls a minute the pacer allows now: the budget share, or under CrowdTwist's limit after 429s",
            registry=r,
        )
        self.intake_answers = Counter(
            "ct_sync_intake_answers",
            "Intake answers to Siebel by status (503: queue refused, OIC Failure)",
            ["status"],
            registry=r,
        )

    def observe_call(self, operation: str, status: int | None, _seconds: float) -> None:
        self.crowdtwist_calls.labels(operation=operation, status=str(status) if status else "none").inc()

    def siebel_call(self, kind: str) -> None:
        self.siebel_calls.labels(kind=kind).inc()

    def set_breaker(self, state: str) -> None:
        self.breaker_state.set(BREAKER_STATES.get(state, -1))

    def set_depths(self, depths: dict[str, int]) -> None:
        for queue, depth in depths.items():
            self.queue_depth.labels(queue=queue).set(depth)
