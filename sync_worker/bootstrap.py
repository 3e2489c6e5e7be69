"""The composition root: builds the application from `Settings`, and accepts ready-made parts (fakes, a sandbox
transport) so tests, the demo and the benchmarks exercise the real wiring.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx
import structlog

from config.settings import Settings
from crowdtwist_client.client import CrowdTwistClient
from siebel_adapter.broker import open_broker, reclaim_unacked
from siebel_adapter.member import SyncStatus
from siebel_adapter.queue import QueueTopology
from siebel_adapter.rest_store import SiebelRestStore
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.clock import SystemClock
from sync_worker.consumer import QueueWorker
from sync_worker.errors import CtSyncError
from sync_worker.handler import EventHandler
from sync_worker.ledger import SqlLedger, build_ledger
from sync_worker.ports import Clock, MemberStore
from sync_worker.sync import MemberSync

log = structlog.get_logger("ct_sync.bootstrap")


def build_member_store(settings: Settings) -> MemberStore:
    if settings.siebel.backend == "rest":
        return SiebelRestStore(settings.siebel)
    return SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)


def build_crowdtwist(settings: Settings, *, transport: httpx.BaseTransport | None = None) -> CrowdTwistClient:
    # One connection per sync thread, a few spare for retries overlapping a slow answer.
    return CrowdTwistClient.from_settings(
        settings.crowdtwist, max_connections=settings.worker.concurrency + 4, transport=transport
    )


@dataclass
class Worker:
    """A wired worker: `run()` blocks until `stop()`; `close()` releases clients and pools."""

    queue_worker: QueueWorker
    store: MemberStore
    crowdtwist: CrowdTwistClient
    ledger: SqlLedger

    def run(self) -> None:
        self.queue_worker.run()

    def stop(self) -> None:
        self.queue_worker.stop()

    def close(self) -> None:
        self.crowdtwist.close()
        self.ledger.close()


def build_worker(
    settings: Settings,
    *,
    store: MemberStore | None = None,
    crowdtwist: CrowdTwistClient | None = None,
    ledger: SqlLedger | None = None,
    clock: Clock | None = None,
) -> Worker:
    clock = clock or SystemClock()
    store = store or build_member_store(settings)
    crowdtwist = crowdtwist or build_crowdtwist(settings)
    ledger = ledger or build_ledger(settings)
    sync = MemberSync(
        store=store,
        crowdtwist=crowdtwist,
        synced_states=ledger,
        defaults=settings.defaults,
        program_id=settings.siebel.program_id,
        clock=clock,
    )
    handler = EventHandler(sync=sync, ledger=ledger, clock=clock, retry_budget=settings.worker.retry_budget)
    connection = open_broker(settings)
    reclaim_unacked(connection)  # the embedded queue: take back what a killed worker held
    queue_worker = QueueWorker(
        connection=connection,
        topology=QueueTopology.from_settings(settings.broker),
        handler=handler,
        concurrency=settings.worker.concurrency,
        prefetch=settings.worker.prefetch,
        on_dead_letter=lambda body, reason: _write_oic_failure(sync, body, reason),
    )
    return Worker(queue_worker=queue_worker, store=store, crowdtwist=crowdtwist, ledger=ledger)


def _write_oic_failure(sync: MemberSync, body: bytes | str, reason: str) -> None:
    """A dead-lettered message that still names a member: tell the Siebel admin on the member (OIC Failure)."""
    try:
        document = json.loads(body)
    except ValueError:
        return
    if not isinstance(document, dict) or not isinstance(document.get("member_number"), str):
        return
    row_id = document.get("row_id") if isinstance(document.get("row_id"), str) else None
    try:
        sync.write_failure(
            document["member_number"],
            row_id=row_id,
            status=SyncStatus.OIC_FAILURE,
            error=f"event could not be processed: {reason}"[:500],
        )
    except CtSyncError as exc:
        log.warning("oic_failure_not_written", error=exc.message)
