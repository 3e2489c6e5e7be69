"""The email after a run (Connect's notification): when, by the job's or group's `notify`, and what.

The subject names the job, the run and its status; the body has the counts, the duration, the files delivered and
the first lines of the error, and for a group each job's run. Counts, file names and error texts only: never a
member's personal data (error texts of the error tree carry Member Numbers at most).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from config.durations import format_duration
from sync_worker.core.ports import Alert, RunResult

ERROR_LINES = 10
_TRIGGERS = {"schedule": "started by the scheduler", "on-demand": "run on demand", "cli": "from the command line"}


def started_how(trigger: str) -> str:
    """`schedule` → "started by the scheduler", for log lines and emails."""
    return _TRIGGERS.get(trigger, f"started by {trigger}")


@dataclass(frozen=True)
class Outcome:
    """A finished run, for the email and the command that waited for it."""

    run_id: str
    name: str
    kind: str
    trigger: str
    result: RunResult
    started: datetime
    finished: datetime
    members: Sequence[Outcome] = field(default=())  # a group's job runs, in order
    not_run: Sequence[str] = field(default=())  # a group's jobs left after the one that did not succeed


def wanted(notify: str, outcome: Outcome) -> bool:
    """`each`: every run; `failed`: a failed one (a stop is asked for by someone who knows); `none`: never."""
    return notify == "each" or (notify == "failed" and outcome.result.status == "Failed")


def run_alert(outcome: Outcome, *, to: Sequence[str] = ()) -> Alert:
    result = outcome.result
    what = "group" if outcome.members or outcome.kind == "group" else "job"
    lines = [
        f"{what.capitalize()} {outcome.name} ({outcome.kind}), run {outcome.run_id}, {started_how(outcome.trigger)}.",
        f"Status: {result.status}",
        f"Started {outcome.started:%Y-%m-%d %H:%M:%S} UTC, took {format_duration(outcome.finished - outcome.started)}",
    ]
    if result.counts:
        lines += ["", "Counts:", *(f"  {name}: {count}" for name, count in result.counts.items())]
    files = [name for name in result.files if name]
    lines += ["", "Files delivered:", *(f"  {name}" for name in files)] if files else ["", "Files delivered: none"]
    if outcome.members or outcome.not_run:
        lines += ["", "Runs of the group:"]
        lines += [f"  {member.run_id}: {member.result.status}" for member in outcome.members]
        lines += [f"  {name}: not run" for name in outcome.not_run]
    if result.error:
        lines += ["", "Error:", *(f"  {line}" for line in result.error.splitlines()[:ERROR_LINES])]
    lines += ["", f"The run's log: ct-sync jobs log {outcome.run_id}"]
    subject = f"[ct-sync] {what} {outcome.name} run {outcome.run_id}: {result.status}"
    return Alert(subject=subject, body="\n".join(lines) + "\n", to=tuple(to))
