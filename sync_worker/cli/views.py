"""What `ct-sync status` and `ct-sync jobs` print: rich tables built from the ledger and the run ledger, or the same
facts as JSON for scripts (`--json`).

Member Numbers are copied from these tables into commands, so their column never wraps nor shortens, however
narrow the terminal: the other columns give way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # the ledger (SQLAlchemy) loads when a command reads it, not for `ct-sync --help`
    from sync_worker.ledger.operations import BreakerReport, OperationsLog
    from sync_worker.ledger.runs import RunLedger, RunRow
    from sync_worker.ledger.sql import AttemptRow, SqlLedger

_STATES = ("Synced", "Data Error", "CT Failure", "OIC Failure", "never sent")  # the last: ledger.sql.NEVER_SENT
_OUTCOMES = ("Synced", "Data Error", "CT Failure", "OIC Failure", "Dead-lettered", "Retrying", "Unchanged", "Skipped")
_SKIPPED = "skipped: "  # the prefix of a poll run's count of one skip reason
POLL_RUNS = 5


@dataclass(frozen=True)
class Overview:
    """Each member's current state, the attempts of the last 24 hours, the dead letters waiting (None: the broker
    could not be asked), the recent failures and poll runs, and each running worker's outage breaker."""

    states: dict[str, int]
    attempts: dict[str, int]
    dead_letters: int | None
    failures: list[AttemptRow]
    polls: list[RunRow]
    breakers: list[BreakerReport]


def read_overview(
    ledger: SqlLedger, runs: RunLedger, operations: OperationsLog, *, now: datetime, dead_letters: int | None
) -> Overview:
    states = ledger.member_states()
    return Overview(
        states={state: states.get(state, 0) for state in _STATES},
        attempts=ledger.attempt_counts(since=now - timedelta(hours=24)),
        dead_letters=dead_letters,
        failures=ledger.recent_failures(limit=20),
        polls=runs.runs(kind="poll", limit=POLL_RUNS),
        breakers=operations.breakers(),
    )


def overview_tables(overview: Overview) -> Group:
    members = Table(title="Members by current state", min_width=32)
    members.add_column("state")
    members.add_column("members", justify="right")
    for state, count in overview.states.items():
        members.add_row(state, str(count))
    attempts = Table(title="Attempts in the last 24 h", min_width=32)
    attempts.add_column("outcome")
    attempts.add_column("attempts", justify="right")
    for outcome in _OUTCOMES:
        if outcome in overview.attempts:
            attempts.add_row(outcome, str(overview.attempts[outcome]))
    waiting = "unknown: the broker cannot be reached" if overview.dead_letters is None else str(overview.dead_letters)
    letters = f"Dead letters: {waiting}" + (" (ct-sync dead-letters list)" if overview.dead_letters else "")
    failures = attempts_table("Recent failures", overview.failures)
    return Group(
        members, attempts, letters, breakers_table(overview.breakers), failures, poll_runs_table(overview.polls)
    )


def overview_json(overview: Overview) -> dict[str, Any]:
    return {
        "members_by_state": overview.states,
        "attempts_last_24h": {
            outcome: overview.attempts[outcome] for outcome in _OUTCOMES if outcome in overview.attempts
        },
        "dead_letters": overview.dead_letters,
        "recent_failures": [attempt_json(row) for row in overview.failures],
        "poll_runs": [run_json(row) for row in overview.polls],
        "breakers": [breaker_json(report) for report in overview.breakers],
    }


def breakers_table(reports: Sequence[BreakerReport]) -> Table | str:
    """Each running worker's outage breaker, as it last told the ledger."""
    if not reports:
        return "Outage breaker: no worker has reported"
    table = Table(title="Outage breaker, per worker (times UTC)")
    table.add_column("worker", no_wrap=True)
    table.add_column("breaker")
    table.add_column("state", overflow="fold")
    for report in reports:
        table.add_row(report.worker, "open" if report.open else "closed", Text(breaker_text(report)))
    return table


def breaker_text(report: BreakerReport) -> str:
    """`paused since …, next probe at …: cause` while open; since when it is closed otherwise."""
    if not report.open:
        return f"syncing since {_utc(report.at)}"
    text = f"paused since {_utc(report.paused_since or report.at)}"
    if report.next_probe_at is not None:
        text += f", next probe at {_utc(report.next_probe_at)}"
    return text + (f": {report.cause}" if report.cause else "")


def breaker_json(report: BreakerReport) -> dict[str, Any]:
    return {
        "worker": report.worker,
        "state": "open" if report.open else "closed",
        "reported_at": report.at.isoformat(),
        "paused_since": report.paused_since.isoformat() if report.paused_since else None,
        "next_probe_at": report.next_probe_at.isoformat() if report.open and report.next_probe_at else None,
        "cause": report.cause if report.open else None,
    }


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def attempts_table(title: str, rows: Sequence[AttemptRow]) -> Table:
    table = Table(title=title)
    table.add_column("time (UTC)", overflow="fold")
    table.add_column("member", no_wrap=True, overflow="ignore", min_width=_widest(row.member_number for row in rows))
    for column in ("event", "source", "attempt", "outcome", "error", "CT calls", "ms"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            f"{row.at:%Y-%m-%d %H:%M:%S}",
            Text(row.member_number),
            row.event_type,
            row.source or "-",
            str(row.attempt),
            row.outcome,
            Text(row.error or ""),
            str(row.ct_calls),
            f"{row.duration_ms:.0f}",
        )
    return table


def attempt_json(row: AttemptRow) -> dict[str, Any]:
    return {
        "at": row.at.isoformat(),
        "member_number": row.member_number,
        "event": row.event_type,
        "source": row.source or None,
        "attempt": row.attempt,
        "outcome": row.outcome,
        "error": row.error,
        "ct_calls": row.ct_calls,
        "duration_ms": round(row.duration_ms, 1),
    }


def poll_runs_table(rows: Sequence[RunRow]) -> Table:
    """The latest poll runs (from the command line, `cli-poll.N`, and of poll jobs): what each read and did."""
    table = Table(title="Poll runs, newest first (times UTC)")
    for column in ("run", "started", "took", "status", "read", "published", "skipped"):
        table.add_column(column, overflow="fold", justify="right" if column in ("read", "published") else "left")
    for row in rows:
        reasons = [
            f"{count} {name.removeprefix(_SKIPPED)}" for name, count in row.counts.items() if name.startswith(_SKIPPED)
        ]
        skipped = str(row.counts.get("skipped", 0)) + (f" ({', '.join(reasons)})" if reasons else "")
        table.add_row(
            row.run_id,
            time_text(row.started_at),
            "-" if row.seconds is None else f"{row.seconds:.1f} s",
            row.status + (f": {row.error}" if row.error else ""),
            str(row.counts.get("read", "-")),
            str(row.counts.get("published", "-")),
            skipped,
        )
    return table


def run_json(row: RunRow) -> dict[str, Any]:
    return {
        "run_id": row.run_id,
        "job": row.job,
        "kind": row.kind,
        "trigger": row.trigger,
        "group_run_id": row.group_run_id,
        "status": row.status,
        "started_at": row.started_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "seconds": row.seconds,
        "counts": row.counts,
        "files": row.files,
        "error": row.error,
    }


def time_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _widest(texts: Any) -> int:
    return max((len(text) for text in texts), default=6)
