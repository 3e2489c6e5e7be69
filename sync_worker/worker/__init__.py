"""The worker process around the core: the kombu consumer carries out the handler's decisions (ack, retry later,
dead-letter), the handler runs one member's sync and records it, the supervisor feeds the outage breaker, metrics
and alerts, and readiness answers `/readyz`. Imports kombu, the core, alerts and metrics; never an adapter (the
composition root hands the store, the client and the ledger in through the core's ports).
"""
