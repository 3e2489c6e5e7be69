"""What `ct-sync status` prints: rich tables built from the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from rich.console import Group
from rich.table import Table

from sync_worker.ledger.sql import NEVER_SENT, AttemptRow, SqlLedger

_STATES = ("Synced", "Data Error", "CT Failure", "OIC Failure", NEVER_SENT)
_OUTCOMES = ("Synced", "Data Error", "CT Failure", "OIC Failure", "Dead-lettered", "Retrying", "Unchanged", "Skipped")


def overview(ledger: SqlLedger, *, now: datetime, dead_letters: int | None) -> Group:
    """Each member's current state, apart from the attempts of the last 24 hours, the dead letters waiting (None:
    the broker could not be asked), and the recent failures."""
    states = ledger.member_states()
    members = Table(title="Members by current state", min_width=32)
    members.add_column("state")
    members.add_column("members", justify="right")
    for state in _STATES:
        members.add_row(state, str(states.get(state, 0)))
    recent = ledger.attempt_counts(since=now - timedelta(hours=24))
    attempts = Table(title="Attempts in the last 24 h", min_width=32)
    attempts.add_column("outcome")
    attempts.add_column("attempts", justify="right")
    for outcome in _OUTCOMES:
        if outcome in recent:
            attempts.add_row(outcome, str(recent[outcome]))
    waiting = "unknown: the broker cannot be reached" if dead_letters is None else str(dead_letters)
    letters = f"Dead letters: {waiting}" + (" (ct-sync dead-letters list)" if dead_letters else "")
    return Group(members, attempts, letters, attempts_table("Recent failures", ledger.recent_failures(limit=20)))


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
