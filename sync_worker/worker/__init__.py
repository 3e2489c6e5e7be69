"""The worker process around the core: the handler runs one member's sync and records it, the supervisor feeds the
outage breaker, metrics and alerts, the outage gate pauses syncing while the ledger or Siebel is down, the in-flight
sizer, the minute's summary line, and readiness answers `/readyz`.
The queue's consumer (`sync_worker.queue.consumer`) carries out the handler's decisions. Imports the core, alerts,
the ledger and metrics; no adapter (the composition root hands the store, the client and the ledger in through the
core's ports).
"""
