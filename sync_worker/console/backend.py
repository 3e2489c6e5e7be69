"""What the console reads and acts through, handed in whole by the composition root (`bootstrap.build_console`):
the ledger and its neighbours (job runs, operator actions and breaker events), the member store, the publisher,
the dead-letter queue and the queue depths. The console imports the ledger (its own database, read for the pages)
and the core's ports; it builds nothing and imports no adapter of an outside system (Siebel, CrowdTwist, the
queue): those come in through these fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from config.settings import DefaultsSettings
from sync_worker.core.dead_letters import DeadLetters
from sync_worker.core.ports import EventPublisher, MemberStore, PrivacyDeletions
from sync_worker.ledger.operations import OperationsLog
from sync_worker.ledger.runs import RunLedger
from sync_worker.ledger.sql import SqlLedger


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ConsoleBackend:
    ledger: SqlLedger
    runs: RunLedger
    operations: OperationsLog
    store: MemberStore
    publisher: EventPublisher
    privacy: PrivacyDeletions  # members deleted on a privacy request: never resubmitted
    dead_letters: DeadLetters
    queue_depths: Callable[[], dict[str, int]]
    defaults: DefaultsSettings
    program_id: str | None
    max_resubmits: int
    calls_per_minute: float  # the CrowdTwist budget: the contract limit times ct-sync's share
    clock: Callable[[], datetime] = _utc_now
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in self.closers:
            close()
