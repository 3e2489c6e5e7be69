"""A run in progress, as a job kind sees it: its log, its counts and files, and its safe points.

A kind calls `checkpoint()` wherever stopping leaves nothing half-done (after a page of the poll is confirmed,
after a member is queued again, while a segment file is still being written locally). It raises `RunStopped`
once the process is stopping (SIGTERM) or `ct-sync jobs stop` asked for this run or its group's run; the ledger
is asked at most once a second, so a kind may call it as often as it likes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import structlog

from sync_worker.core.ports import Clock, JobRuns, RunStopped

log = structlog.get_logger("ct_sync.jobs")
STOP_CHECK_SECONDS = 1.0


@dataclass
class RunContext:
    run_id: str
    job: str
    runs: JobRuns
    clock: Clock
    stopping: threading.Event
    group_run_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    _next_check: float | None = None

    def log(self, line: str) -> None:
        """A line of the run's own log (`ct-sync jobs log RUN_ID`): counts, file names, Member Numbers at most."""
        self.runs.log(self.run_id, line, at=self.clock.now())
        log.info("job_log", run_id=self.run_id, line=line)

    def checkpoint(self) -> None:
        if self.stopping.is_set():
            raise RunStopped("stopped: ct-sync is shutting down")
        now = self.clock.monotonic()
        if self._next_check is not None and now < self._next_check:
            return
        self._next_check = now + STOP_CHECK_SECONDS
        for run_id in (self.run_id, self.group_run_id):
            if run_id is not None and self.runs.stop_requested(run_id):
                raise RunStopped(f"stopped on request (ct-sync jobs stop {run_id})")
