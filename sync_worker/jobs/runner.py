"""Runs a job or a group now, records it in the ledger, and sends its email.

A run is recorded `Running` when it is started (`start`, quick: the scheduler does it before handing the run to a
thread), then carried to its end (`execute`): `Success`, `Failed` with the error, or `Stopped` at a safe point.
A group runs its jobs in order, each a run of its own linked to the group's run, and stops at the first that does
not succeed; the group's `notify` applies, not its jobs'. Nothing a job raises escapes `execute`: a failing job
never stops the scheduler, and no run is left `Running` while the ledger can be written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from config.redaction import redact_text
from sync_worker.core.errors import CtSyncError
from sync_worker.core.ports import Alert, Clock, JobRuns, RunResult, RunStatus, RunStopped
from sync_worker.jobs.catalog import Definition, GroupDefinition, JobDefinition
from sync_worker.jobs.context import RunContext
from sync_worker.jobs.kinds import JobKinds
from sync_worker.jobs.notify import Outcome, run_alert, started_how, wanted

log = structlog.get_logger("ct_sync.jobs")


@dataclass(frozen=True)
class PendingRun:
    """A run recorded `Running`, not carried out yet."""

    run_id: str
    definition: Definition
    trigger: str


class JobRunner:
    def __init__(
        self,
        *,
        runs: JobRuns,
        kinds: JobKinds,
        notify: Callable[[Alert], None],
        clock: Clock,
        stopping: threading.Event | None = None,
    ) -> None:
        self._runs = runs
        self._kinds = kinds
        self._notify = notify
        self._clock = clock
        self.stopping = stopping or threading.Event()  # set: running jobs stop at their next safe point

    def start(self, definition: Definition, *, trigger: str) -> PendingRun:
        run_id = self._runs.start_run(definition.name, kind=definition.kind, trigger=trigger, at=self._clock.now())
        log.info("job_run_started", run_id=run_id, trigger=trigger)
        return PendingRun(run_id, definition, trigger)

    def run(self, definition: Definition, *, trigger: str) -> Outcome:
        """Start and carry out a run now (`ct-sync jobs run`)."""
        return self.execute(self.start(definition, trigger=trigger))

    def execute(self, pending: PendingRun) -> Outcome:
        definition = pending.definition
        if isinstance(definition, GroupDefinition):
            outcome = self._group(definition, pending)
        else:
            outcome = self._job(definition, pending.run_id, trigger=pending.trigger)
        log.info("job_run_finished", run_id=outcome.run_id, status=outcome.result.status, error=outcome.result.error)
        if wanted(definition.settings.notify, outcome):
            self._notify(run_alert(outcome, to=definition.settings.notify_to))
        return outcome

    def _job(self, job: JobDefinition, run_id: str, *, trigger: str, group_run_id: str | None = None) -> Outcome:
        started = self._clock.now()
        context = RunContext(
            run_id=run_id, job=job.name, runs=self._runs, clock=self._clock, stopping=self.stopping,
            group_run_id=group_run_id,
        )  # fmt: skip
        try:
            context.log(f"{job.kind} job {job.name}, {started_how(trigger)}")
            context.checkpoint()  # a stop asked before the run began
            self._kinds.run(job, context)
            result = RunResult("Success", counts=context.counts, files=context.files)
        except RunStopped as stop:
            result = RunResult("Stopped", counts=context.counts, files=context.files, error=str(stop))
        except CtSyncError as exc:
            result = RunResult("Failed", counts=context.counts, files=context.files, error=exc.message)
        except Exception as exc:  # a failing job never takes the scheduler down with it
            log.exception("job_run_crashed", run_id=run_id)
            error = f"internal error: {type(exc).__name__}: {redact_text(str(exc))}"
            result = RunResult("Failed", counts=context.counts, files=context.files, error=error)
        return self._finish(context, job.name, job.kind, trigger, result, started=started)

    def _group(self, group: GroupDefinition, pending: PendingRun) -> Outcome:
        started = self._clock.now()
        context = RunContext(
            run_id=pending.run_id, job=group.name, runs=self._runs, clock=self._clock, stopping=self.stopping
        )
        jobs = ", ".join(job.name for job in group.jobs)
        context.log(f"group {group.name}, {started_how(pending.trigger)}: {jobs}")
        members: list[Outcome] = []
        failed: Outcome | None = None
        stopped: str | None = None
        waiting = list(group.jobs)
        while waiting and failed is None and stopped is None:
            job = waiting.pop(0)
            if not job.settings.active:
                context.log(f"{job.name}: inactive, not run")
                continue
            try:
                context.checkpoint()  # between two jobs
            except RunStopped as stop:
                waiting.insert(0, job)
                stopped = str(stop)
                break
            run_id = self._runs.start_run(
                job.name, kind=job.kind, trigger=pending.trigger, at=self._clock.now(), group_run_id=pending.run_id
            )
            context.log(f"{job.name}: run {run_id}")
            member = self._job(job, run_id, trigger=pending.trigger, group_run_id=pending.run_id)
            members.append(member)
            context.log(f"{run_id}: {member.result.status}")
            if member.result.status != "Success":
                failed = member
        not_run = [job.name for job in waiting]
        if not_run:
            context.log(f"not run: {', '.join(not_run)}")
        counts = {"jobs run": len(members), "succeeded": sum(m.result.status == "Success" for m in members)}
        files = [name for member in members for name in member.result.files]
        if failed is not None:
            status = failed.result.status
            result = RunResult(status, counts=counts, files=files, error=f"{failed.run_id}: {failed.result.error}")
        elif stopped is not None:
            result = RunResult("Stopped", counts=counts, files=files, error=stopped)
        else:
            result = RunResult("Success", counts=counts, files=files)
        outcome = self._finish(context, group.name, group.kind, pending.trigger, result, started=started)
        return replace(outcome, members=members, not_run=not_run)

    def _finish(
        self, context: RunContext, name: str, kind: str, trigger: str, result: RunResult, *, started: datetime
    ) -> Outcome:
        if result.error:
            context.log(f"{result.status.lower()}: {result.error}")
        finished = self._clock.now()
        self._runs.finish_run(context.run_id, result, at=finished)
        return Outcome(context.run_id, name, kind, trigger, result, started, finished)


@contextmanager
def command_line_run(
    runs: JobRuns, job: str, *, kind: str, clock: Clock, stopping: threading.Event
) -> Iterator[RunContext]:
    """A run started from the command line (`ct-sync poll`: a run of job `cli-poll`), recorded as a job's run is:
    `Running`, then `Success`, `Stopped` at a safe point, or `Failed` with the error; the error itself goes on up,
    to the command's exit code. No email: whoever ran the command is watching it."""
    run_id = runs.start_run(job, kind=kind, trigger="cli", at=clock.now())
    context = RunContext(run_id=run_id, job=job, runs=runs, clock=clock, stopping=stopping)
    context.log(f"{kind} job {job}, {started_how('cli')}")

    def finish(status: RunStatus, error: str | None = None) -> None:
        if error:
            context.log(f"{status.lower()}: {error}")
        runs.finish_run(run_id, RunResult(status, counts=context.counts, error=error), at=clock.now())

    try:
        yield context
    except RunStopped as stop:
        finish("Stopped", str(stop))
        raise
    except CtSyncError as exc:
        finish("Failed", exc.message)
        raise
    except BaseException as exc:  # a bug, or an interrupt the command did not catch: never leave it Running
        finish("Failed", f"interrupted: {type(exc).__name__}")
        raise
    finish("Success")
