"""The jobs commands (design.md, "Jobs and schedules"; Connect's All Jobs and Completed Jobs tabs):
`ct-sync jobs list|run|runs|log|stop` and `ct-sync scheduler`.

Exit codes: `jobs run` 0 Success, 1 Failed or Stopped, 2 an unknown or inactive job; `jobs log` and `jobs stop`
2 for an unknown run, `jobs stop` 1 for a run that is no longer running. A job the configuration refuses is
exit 2 with one line naming it; an unreachable ledger 75.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from sync_worker.cli.app import (
    AsJson,
    ExitCode,
    app,
    err_console,
    fail,
    or_exit,
    out_console,
    print_json,
    say,
    settings_or_exit,
    stop_on_signals,
)
from sync_worker.cli.views import run_json, time_text

if TYPE_CHECKING:
    from config import Settings
    from sync_worker.jobs.catalog import Catalog

jobs_app = typer.Typer(no_args_is_help=True, help="Jobs and groups of the config file: list, run, history, stop.")
app.add_typer(jobs_app, name="jobs", rich_help_panel="Jobs")


@jobs_app.command("list")
def list_jobs(as_json: AsJson = False) -> None:
    """Every job and group: group, kind, schedule, active, running, next run, previous run (UTC)."""
    from sync_worker.bootstrap import build_run_ledger

    settings = settings_or_exit()
    catalog = _catalog_or_exit(settings)
    if not catalog.jobs and not catalog.groups:  # an empty table would not say why, nor where jobs go
        if as_json:
            print_json([])
            err_console.print(_no_jobs(), markup=False, highlight=False, soft_wrap=True)
        else:
            say(_no_jobs())
        return
    runs = or_exit(lambda: build_run_ledger(settings))
    now = datetime.now(UTC)
    running = or_exit(runs.running_jobs)
    latest = or_exit(runs.latest_runs)
    runs.close()
    rows: list[dict[str, Any]] = []
    table = Table(title="Jobs and groups (times UTC)")
    for column in ("name", "group", "kind", "schedule", "active", "running", "next run", "previous run"):
        table.add_column(column, overflow="fold")
    for definition in catalog:
        options = definition.settings
        upcoming = options.schedule.next_after(now) if options.active else None
        previous = latest.get(definition.name)
        is_running = definition.name in running
        rows.append(
            {
                "name": definition.name,
                "groups": list(definition.groups),
                "kind": definition.kind,
                "schedule": options.schedule.text,
                "active": options.active,
                "running": is_running,
                "next_run": upcoming.isoformat() if upcoming else None,
                "previous_run": run_json(previous) if previous else None,
            }
        )
        table.add_row(
            definition.name,
            ", ".join(definition.groups) or "-",
            definition.kind,
            options.schedule.text,
            "yes" if options.active else "no",
            "yes" if is_running else "",
            time_text(upcoming) if upcoming else "-",
            f"{time_text(previous.started_at)} {previous.run_id} {previous.status}" if previous else "-",
        )
    if as_json:
        print_json(rows)
    else:
        out_console.print(table)


@jobs_app.command("run")
def run_job(name: Annotated[str, typer.Argument(help="a job or a group")]) -> None:
    """Run a job or a group now, on demand (its schedule does not move); waits for the end."""
    from sync_worker.bootstrap import build_jobs

    settings = settings_or_exit()
    catalog = _catalog_or_exit(settings)
    stopping = threading.Event()
    jobs = or_exit(lambda: build_jobs(settings, catalog=catalog, stopping=stopping))
    try:
        definition = catalog.get(name)
        if definition is None:
            fail(ExitCode.CONFIGURATION, f"ct-sync jobs run: no job or group {name!r} (ct-sync jobs list shows them)")
        if not definition.settings.active:
            fail(ExitCode.CONFIGURATION, f"ct-sync jobs run: {name} is inactive (active = false)")
        pending = or_exit(lambda: jobs.runner.start(definition, trigger="on-demand"))
        err_console.print(f"run {pending.run_id} started", markup=False, highlight=False)
        stop_on_signals(stopping)
        outcome = or_exit(lambda: jobs.runner.execute(pending))
    finally:
        jobs.close()
    out_console.print(f"run {outcome.run_id}: {outcome.result.status}", markup=False, highlight=False)
    for member in outcome.members:
        out_console.print(f"  {member.run_id}: {member.result.status}", markup=False, highlight=False)
    if outcome.result.error:
        err_console.print(outcome.result.error, markup=False, highlight=False, soft_wrap=True)
    if outcome.result.status != "Success":
        raise typer.Exit(int(ExitCode.MEMBER_PROBLEM))


@jobs_app.command("runs")
def list_runs(
    job: Annotated[str | None, typer.Option(help="only this job's or group's runs")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="only failed runs")] = False,
    limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 50,
    as_json: AsJson = False,
) -> None:
    """Completed and running runs, newest first (times UTC)."""
    from sync_worker.bootstrap import build_run_ledger

    settings = settings_or_exit()
    runs = or_exit(lambda: build_run_ledger(settings))
    rows = or_exit(lambda: runs.runs(job=job, statuses=["Failed"] if failed else [], limit=limit))
    runs.close()
    if as_json:
        print_json([run_json(row) for row in rows])
        return
    table = Table(title="Job runs, newest first (times UTC)")
    for column in ("run", "kind", "trigger", "status", "started", "took", "counts", "files", "error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row.run_id + (f"\n(in {row.group_run_id})" if row.group_run_id else ""),
            row.kind,
            row.trigger,
            row.status,
            time_text(row.started_at),
            "-" if row.seconds is None else f"{row.seconds:.1f} s",
            ", ".join(f"{name} {count}" for name, count in row.counts.items()),
            "\n".join(row.files),
            (row.error or "").split("\n", 1)[0],
        )
    out_console.print(table)


@jobs_app.command("log")
def show_log(run_id: Annotated[str, typer.Argument(help="a run id, JOB.N")], as_json: AsJson = False) -> None:
    """A run's own log lines, and its outcome."""
    from sync_worker.bootstrap import build_run_ledger

    settings = settings_or_exit()
    runs = or_exit(lambda: build_run_ledger(settings))
    row = or_exit(lambda: runs.run(run_id))
    if row is None:
        fail(ExitCode.CONFIGURATION, f"ct-sync jobs log: no run {run_id!r} (ct-sync jobs runs lists them)")
    lines = or_exit(lambda: runs.log_lines(run_id))
    runs.close()
    if as_json:
        print_json({**run_json(row), "log": [{"at": at.isoformat(), "line": line} for at, line in lines]})
        return
    took = "" if row.seconds is None else f", took {row.seconds:.1f} s"
    say(f"run {row.run_id} ({row.kind}, {row.trigger}): {row.status}, started {time_text(row.started_at)} UTC{took}")
    for at, line in lines:
        say(f"{at:%H:%M:%S} {line}")


@jobs_app.command("stop")
def stop_run(run_id: Annotated[str, typer.Argument(help="a running run's id, JOB.N")]) -> None:
    """Ask a running job or group to stop at its next safe point; it is recorded Stopped."""
    from sync_worker.bootstrap import build_run_ledger

    settings = settings_or_exit()
    runs = or_exit(lambda: build_run_ledger(settings))
    row = or_exit(lambda: runs.run(run_id))
    if row is None:
        fail(ExitCode.CONFIGURATION, f"ct-sync jobs stop: no run {run_id!r} (ct-sync jobs runs lists them)")
    if row.status != "Running":
        fail(ExitCode.MEMBER_PROBLEM, f"ct-sync jobs stop: run {run_id} is not running (it ended {row.status})")
    or_exit(lambda: runs.request_stop(run_id, at=datetime.now(UTC)))
    runs.close()
    say(f"stop requested: {run_id} stops at its next safe point (ct-sync jobs log {run_id} shows when)")


@app.command(rich_help_panel="Jobs")
def scheduler() -> None:
    """Start due jobs and groups (long-running). Several may run: one leads, the others stand by."""
    from sync_worker.bootstrap import build_jobs, build_scheduler

    settings = settings_or_exit()
    catalog = _catalog_or_exit(settings)
    stopping = threading.Event()
    jobs = or_exit(lambda: build_jobs(settings, catalog=catalog, stopping=stopping))
    running = build_scheduler(jobs, settings)
    stop_on_signals(stopping)
    try:
        running.serve()
    finally:
        jobs.close()


def _no_jobs() -> str:
    """Why there is no job, and how to declare one: in the TOML file CTSYNC_CONFIG names."""
    import os

    from config.settings import CONFIG_FILE_VARIABLE

    config_file = os.environ.get(CONFIG_FILE_VARIABLE)
    how = 'docs/operations.md, section 8, "A job file"'
    if not config_file:
        return (
            f"No jobs: no job file is configured. Declare jobs as [jobs.NAME] tables in a TOML file and name it "
            f"with {CONFIG_FILE_VARIABLE}=path/to/ct-sync.toml ({how})."
        )
    return f"No jobs in {config_file}: declare them as [jobs.NAME] tables there ({how})."


def _catalog_or_exit(settings: Settings) -> Catalog:
    from sync_worker.core.errors import ConfigurationError
    from sync_worker.jobs.catalog import Catalog

    try:
        return Catalog.from_settings(settings)
    except ConfigurationError as exc:
        fail(ExitCode.CONFIGURATION, f"ct-sync: configuration error: {exc.message}")
