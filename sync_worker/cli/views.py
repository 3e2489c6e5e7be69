"""What `ct-sync status` prints: rich tables built from the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from rich.console import Group
from rich.table import Table

from sync_worker.ledger.sql import AttemptRow, SqlLedger

_STATUSES = ("Synced", "Data Error", "CT Failure", "OIC Failure", "Skipped", "Dead-lettered")


def overview(ledger: SqlLedger, *, now: datetime) -> Group:
    members = ledger.member_statuses()
    recent = ledger.attempt_counts(since=now - timedelta(hours=24))
    counts = Table(title="Members by latest outcome, and attempts in the last 24 h")
    counts.add_column("outcome")
    counts.add_column("members", justify="right")
    counts.add_column("attempts (24 h)", justify="right")
    for outcome in (*_STATUSES, "Unchanged", "Retrying"):
        if outcome in members or outcome in recent:
            counts.add_row(outcome, str(members.get(outcome, 0)), str(recent.get(outcome, 0)))
    return Group(counts, attempts_table("Recent failures", ledger.recent_failures(limit=20)))


def attempts_table(title: str, rows: Sequence[AttemptRow]) -> Table:
    table = Table(title=title)
    for column in ("time (UTC)", "member", "event", "attempt", "outcome", "error", "CT calls", "ms"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row.at.strftime("%Y-%m-%d %H:%M:%S"),
            row.member_number,
            row.event_type,
            str(row.attempt),
            row.outcome,
            row.error or "",
            str(row.ct_calls),
            f"{row.duration_ms:.0f}",
        )
    return table
