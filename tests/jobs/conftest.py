"""The jobs room's world: the real ledger on SQLite, a clock held still, a mailer that keeps what it sends, and
kinds scripted per job (succeed, fail, crash, or do something given)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from config.settings import Settings
from sync_worker.core.errors import TransientError
from sync_worker.core.ports import Clock
from sync_worker.jobs.catalog import Catalog, JobDefinition
from sync_worker.jobs.context import RunContext
from sync_worker.jobs.runner import JobRunner
from sync_worker.ledger.runs import RunLedger
from tests.fakes import FakeMailer

Step = Callable[[RunContext], None]


class ScriptedKinds:
    """Runs every job by its script: `fail` (a TransientError), `crash` (a bug), or a step; default: succeed."""

    def __init__(self) -> None:
        self.scripts: dict[str, str | Step] = {}
        self.ran: list[str] = []  # run ids, in the order they ran

    def run(self, job: JobDefinition, context: RunContext) -> None:
        self.ran.append(context.run_id)
        script = self.scripts.get(job.name)
        if script == "fail":
            raise TransientError("Siebel unavailable: HTTP 503", system="siebel")
        if script == "crash":
            raise KeyError("a bug")
        if callable(script):
            script(context)
        context.counts["rows"] = 1


@pytest.fixture
def kinds() -> ScriptedKinds:
    return ScriptedKinds()


@pytest.fixture
def mailer() -> FakeMailer:
    return FakeMailer()


def catalog(jobs: dict[str, dict[str, Any]], groups: dict[str, dict[str, Any]] | None = None) -> Catalog:
    """Jobs as the TOML file gives them; a job without a kind is a poll job."""
    settings = Settings(
        jobs={name: {"kind": "poll", **options} for name, options in jobs.items()},  # type: ignore[arg-type]
        groups=groups or {},  # type: ignore[arg-type]
    )
    return Catalog.from_settings(settings)


def runner(runs: RunLedger, kinds: ScriptedKinds, mailer: FakeMailer, clock: Clock) -> JobRunner:
    return JobRunner(runs=runs, kinds=kinds, notify=mailer.send, clock=clock)
