"""The pages (GET, nothing changes): overview, failures, one member, dead letters, job runs and a run's log.

Each reads through the backend and renders a template; a system that cannot be reached is shown on the page
where its numbers would be, and the rest of the page still comes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from starlette.responses import Response

from sync_worker.console.rendering import backend_of, render
from sync_worker.console.security import Visit
from sync_worker.core.errors import CtSyncError
from sync_worker.core.mapping import map_member
from sync_worker.core.member import skip_reason
from sync_worker.ledger.sql import FAILURES, NEVER_SENT

STATES = ("Synced", "Data Error", "CT Failure", "OIC Failure", NEVER_SENT)
OUTCOMES = ("Synced", "Data Error", "CT Failure", "OIC Failure", "Dead-lettered", "Retrying", "Unchanged", "Skipped")
PAGE_SIZE = 50
LETTERS_SHOWN = 50
T = TypeVar("T")


def overview(visit: Visit) -> Response:
    backend = backend_of(visit)
    now = backend.clock()
    hourly_budget = backend.calls_per_minute * 60
    calls_last_hour = backend.ledger.calls_since(now - timedelta(hours=1))
    depths, depths_error = _reach(backend.queue_depths)
    return render(
        visit,
        "overview.html",
        states=backend.ledger.member_states(),
        state_names=STATES,
        recent=backend.ledger.attempt_counts(since=now - timedelta(hours=24)),
        outcome_names=OUTCOMES,
        calls_last_day=backend.ledger.calls_since(now - timedelta(hours=24)),
        calls_last_hour=calls_last_hour,
        hourly_budget=hourly_budget,
        budget_used=calls_last_hour / hourly_budget if hourly_budget else 0.0,
        breakers=backend.operations.breakers(),
        depths=depths,
        depths_error=depths_error,
        failures=backend.ledger.failures(limit=10),
        runs=backend.runs.runs(limit=5),
    )


def failures(visit: Visit) -> Response:
    backend = backend_of(visit)
    status = visit.param("status")
    text = visit.param("q").strip()
    page = max(1, _int(visit.param("page"), 1))
    outcomes = (status,) if status in FAILURES else FAILURES
    rows = backend.ledger.failures(outcomes=outcomes, text=text, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    return render(
        visit,
        "failures.html",
        rows=rows[:PAGE_SIZE],
        more=len(rows) > PAGE_SIZE,
        page=page,
        status=status if status in FAILURES else "",
        statuses=FAILURES,
        text=text,
    )


def member(visit: Visit) -> Response:
    backend = backend_of(visit)
    number = visit.param("number").strip()
    history = backend.ledger.history(number, limit=100) if number else []
    found, store_error = _reach(lambda: backend.store.get_member(number)) if number else (None, None)
    mapping = map_member(found, backend.defaults) if found is not None else None
    queued = _int(visit.param("queued"), 0)
    # After a resubmit, the page looks again every few seconds until an attempt newer than the resubmit is in.
    waiting = bool(queued) and not any(row.at.timestamp() >= queued for row in history)
    waited_long = waiting and backend.clock().timestamp() - queued > 120
    return render(
        visit,
        "member.html",
        http_status=200 if number and (history or found) else 404,
        number=number,
        member=found,
        store_error=store_error,
        skip=skip_reason(found, program_id=backend.program_id) if found is not None else None,
        mapping=mapping,
        history=history,
        actions=backend.operations.actions(member_number=number, limit=20) if number else [],
        waiting=waiting and not waited_long,
        waited_long=waited_long,
    )


def dead_letters(visit: Visit) -> Response:
    backend = backend_of(visit)
    count, count_error = _reach(backend.dead_letters.count)
    letters, letters_error = _reach(lambda: backend.dead_letters.peek(limit=LETTERS_SHOWN))
    return render(
        visit,
        "dead_letters.html",
        count=count,
        letters=letters or [],
        error=count_error or letters_error,
    )


def jobs(visit: Visit) -> Response:
    backend = backend_of(visit)
    failed_only = visit.param("failed") == "1"
    runs = backend.runs.runs(statuses=("Failed",) if failed_only else (), limit=100)
    return render(visit, "jobs.html", runs=runs, failed_only=failed_only)


def job_run(visit: Visit) -> Response:
    backend = backend_of(visit)
    run_id = visit.param("id")
    run = backend.runs.run(run_id)
    lines = backend.runs.log_lines(run_id) if run is not None else []
    return render(visit, "job_run.html", http_status=200 if run else 404, run_id=run_id, run=run, lines=lines)


def _reach(read: Callable[[], T]) -> tuple[T | None, str | None]:
    """The value, or the reason it could not be read (shown in its place)."""
    try:
        return read(), None
    except CtSyncError as exc:
        return None, f"{exc.system or 'a system'} unreachable: {exc.message}"


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default
