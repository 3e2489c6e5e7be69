"""The sync commands: `worker`, `intake`, `poll`, `publish`, `resubmit`, `status`, `preview`, `check`.

Thin: each command reads its options, builds what it needs through the composition root (`sync_worker.bootstrap`),
calls one use case and prints. Heavy imports wait inside the commands, so `ct-sync --help` stays quick.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import structlog
import typer
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from sync_worker.cli.app import (
    AsJson,
    ExitCode,
    app,
    err_console,
    fail,
    or_exit,
    out_console,
    parse_instant,
    print_json,
    say,
    settings_or_exit,
    stop_on_signals,
)

if TYPE_CHECKING:
    from config import Settings
    from sync_worker.core.ports import EventPublisher
    from sync_worker.core.resubmit import Plan
    from sync_worker.entrypoints.poller import Poller, PollReport
    from sync_worker.ledger.runs import RunLedger

log = structlog.get_logger("ct_sync.cli")
T = TypeVar("T")

MemberNumbers = Annotated[list[str] | None, typer.Option("--member", help="a Member Number (repeatable)")]


@app.command(rich_help_panel="Sync members")
def worker() -> None:
    """Consume member events and sync them to CrowdTwist (long-running)."""
    from sync_worker.bootstrap import build_worker

    settings = settings_or_exit()
    running = or_exit(lambda: build_worker(settings))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: running.stop())
    try:
        or_exit(running.run)  # a metrics port already taken: one line naming CTSYNC_METRICS__PORT, exit 2
    finally:
        running.close()


@app.command(rich_help_panel="Sync members")
def intake() -> None:
    """Serve the HTTP endpoint Siebel's workflow posts member events to (and its /openapi.json)."""
    from sync_worker.bootstrap import build_intake, describe_systems
    from sync_worker.http import serve_forever

    settings = settings_or_exit()
    running = or_exit(lambda: build_intake(settings))
    systems = describe_systems(settings)
    log.info("intake_started", broker=systems["broker"], siebel=systems["siebel"], ledger=systems["ledger"])
    try:  # uvicorn answers SIGTERM by finishing the requests in flight, then returns
        or_exit(
            lambda: serve_forever(
                running.app, host=settings.intake.host, port=settings.intake.port,
                setting="CTSYNC_INTAKE__PORT", name="intake",
            )
        )  # fmt: skip
    finally:
        running.close()


@app.command(rich_help_panel="Sync members")
def poll(
    every: Annotated[str | None, typer.Option(help="repeat at this interval, e.g. 5m; default: once")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="read and count what would be published; publish nothing")
    ] = False,
) -> None:
    """Publish an event for every member changed in Siebel since the last poll (the first poll: every member).
    Each pass is recorded as a run of job cli-poll (ct-sync status shows them). With --every, a pass that cannot
    reach Siebel or the queue is tried again with backoff, not given up; SIGTERM or Ctrl-C stops at a page's end."""
    from config.durations import parse_duration
    from sync_worker.bootstrap import build_poller, build_run_ledger
    from sync_worker.core.ports import RunStopped

    settings = settings_or_exit()
    try:
        interval = parse_duration(every).total_seconds() if every else None
    except ValueError as exc:
        fail(ExitCode.CONFIGURATION, f"ct-sync poll: --every: {exc}")
    if dry_run and interval is not None:
        fail(ExitCode.CONFIGURATION, "ct-sync poll: --dry-run counts once; it goes without --every")
    poller = or_exit(lambda: build_poller(settings))
    runs = None if dry_run else or_exit(lambda: build_run_ledger(settings))
    stopping = threading.Event()
    stop_on_signals(stopping)

    def one_pass() -> tuple[PollReport, str | None]:
        return _poll_pass(poller, runs, stopping, longest_wait=interval)

    def wait_unless_stopped(seconds: float) -> None:
        stopping.wait(seconds)

    def with_retries() -> tuple[PollReport, str | None]:
        # The pass retries inside its own run; this only covers the run ledger failing to start or end one.
        return retry_transient(one_pass, longest_wait=interval or 0, sleep=wait_unless_stopped)

    while not stopping.is_set():
        try:
            report, run_id = or_exit(one_pass if interval is None else with_retries)
        except RunStopped as stop:
            say(f"poll {stop}; the next poll goes on from the last page published")
            return
        _print_poll(report, run_id)
        if interval is None:
            return
        stopping.wait(interval)


def _poll_pass(
    poller: Poller,
    runs: RunLedger | None,
    stopping: threading.Event,
    *,
    longest_wait: float | None = None,
    sleep: Callable[[float], Any] | None = None,
) -> tuple[PollReport, str | None]:
    """One pass with its progress bar, recorded as a run of job cli-poll (a dry run is not recorded). With
    `longest_wait` (`--every`), Siebel or the queue failing is tried again inside the pass (waiting with `sleep`,
    by default until stopped), each wait said in the run's log: one run per pass, however many tries it took,
    not a failed run per try."""
    from sync_worker.cli.progress import progress
    from sync_worker.core.clock import SystemClock
    from sync_worker.core.ports import RunStopped
    from sync_worker.jobs.kinds import PageConfirmed, poll_changes
    from sync_worker.jobs.runner import command_line_run

    if stopping.is_set():  # asked to stop while waiting to try again
        raise RunStopped("stopped: ct-sync is shutting down")
    with progress(err_console, "reading changed members", unit="members", event="poll_progress") as advance:

        def shown(report: PollReport) -> None:
            advance(report.read, report.total)

        if runs is None:
            return poller.run_once(shown, dry_run=True), None

        def pass_shown(confirmed: PageConfirmed) -> PollReport:
            def page(report: PollReport) -> None:
                confirmed(report)
                shown(report)

            return poller.run_once(page)

        with command_line_run(runs, "cli-poll", kind="poll", clock=SystemClock(), stopping=stopping) as run:

            def attempt() -> PollReport:
                if stopping.is_set():  # asked to stop while waiting to try again: the run ends Stopped
                    raise RunStopped("stopped: ct-sync is shutting down")
                return poll_changes(pass_shown, run)

            if longest_wait is None:
                return attempt(), run.run_id
            report = retry_transient(attempt, longest_wait=longest_wait, sleep=sleep or stopping.wait, note=run.log)
            return report, run.run_id


def _print_poll(report: PollReport, run_id: str | None) -> None:
    kind = "initial load (resumed)" if report.resumed else "initial load" if report.initial_load else "changes"
    of = f" of {report.total}" if report.total is not None else ""
    skipped = sum(report.skipped.values())
    if report.dry_run:
        say(f"dry run, {kind}: read {report.read}{of}; would publish {report.published}, skip {skipped}")
        say("  nothing was published and the watermark did not move")
    else:
        say(f"{kind}: read {report.read}{of}, published {report.published}, skipped {skipped} (run {run_id})")
    if report.unreadable:
        say(f"  {report.unreadable} unreadable record(s) published: the worker writes their Data Error")
    for reason, count in report.skipped.most_common():
        say(f"  skipped {count}: {reason}")


def retry_transient(
    call: Callable[[], T],
    *,
    longest_wait: float,
    sleep: Callable[[float], Any] = time.sleep,
    note: Callable[[str], None] | None = None,
) -> T:
    """Call until it does not fail transiently (Siebel or the queue unreachable), waiting 5 s, 10 s, 20 s …
    (jittered, at most `longest_wait`) between tries, and saying so each time (on stderr, and to `note`: the
    run's log); other failures are raised."""
    import tenacity

    from sync_worker.core.errors import CtSyncError, TransientError, outage_text

    def say(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        system = getattr(exc, "system", "") or "a system"
        message = getattr(exc, "message", str(exc))
        outage = outage_text(exc) if isinstance(exc, CtSyncError) else f"{system} unreachable: {message}"
        line = f"{outage}; trying again in {wait:.0f} s (attempt {state.attempt_number + 1})"
        err_console.print(f"ct-sync poll: {line}", markup=False, highlight=False, soft_wrap=True)
        if note is not None:
            note(line)
        log.warning("poll_retry", system=system, error=message, attempt=state.attempt_number, wait_seconds=wait)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(TransientError),
        wait=tenacity.wait_exponential(multiplier=5, max=max(longest_wait, 5)) + tenacity.wait_random(0, 1),
        before_sleep=say,
        sleep=sleep,
        reraise=True,
    )
    return retrying(call)


@app.command(rich_help_panel="Sync members")
def publish(
    member: Annotated[str, typer.Option("--member", help="the Member Number")],
    event: Annotated[str, typer.Option(help="enroll or update")] = "update",
) -> None:
    """Publish one member event."""
    from sync_worker.bootstrap import build_member_store, build_publisher
    from sync_worker.core.messages import MemberEvent

    if event not in ("enroll", "update"):
        fail(ExitCode.CONFIGURATION, f"ct-sync publish: --event must be enroll or update, not {event}")
    settings = settings_or_exit()
    with closing(or_exit(lambda: build_member_store(settings))) as store:
        found = or_exit(lambda: store.get_member(member))
    if found is None:
        fail(ExitCode.MEMBER_PROBLEM, f"ct-sync publish: no member {member} in Siebel")
    message = MemberEvent(
        event_type=event,
        member_number=member,
        row_id=found.row_id,
        updated=found.updated,
        source="publish",
    )
    or_exit(lambda: build_publisher(settings).publish(message))
    out_console.print(f"queued {event} of {member}: event {message.event_id}")


@app.command(rich_help_panel="Sync members")
def resubmit(
    member: MemberNumbers = None,
    status: Annotated[list[str] | None, typer.Option(help='a CT Sync Status, e.g. "CT Failure"')] = None,
    since: Annotated[str | None, typer.Option(help="ISO time: failures at or after")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time: failures before")] = None,
    dead_letters: Annotated[bool, typer.Option("--dead-letters", help="replay the dead-letter queue")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be queued")] = False,
    force: Annotated[bool, typer.Option("--force", help="past the resubmit limit")] = False,
    as_json: AsJson = False,
) -> None:
    """Queue members again: by Member Number, by status, by time window, or from the dead-letter queue."""
    from sync_worker.bootstrap import build_publisher
    from sync_worker.core.errors import nearest_name
    from sync_worker.core.member import SyncStatus
    from sync_worker.core.resubmit import Plan

    statuses = status or []
    known = [str(s) for s in SyncStatus]
    unknown = [value for value in statuses if value not in known]
    if unknown:
        # Exact spelling only (it is matched against Siebel's field and the ledger as written), but the fix is
        # one copy away: the nearest status and every one of them.
        nearest = nearest_name(unknown[0], known)
        hint = f"; did you mean {nearest!r}?" if nearest else ""
        fail(
            ExitCode.CONFIGURATION,
            f"ct-sync resubmit: --status {unknown[0]!r} is not a CT Sync Status{hint} "
            f"(the statuses: {', '.join(repr(name) for name in known)})",
        )
    if not (member or statuses or dead_letters):
        fail(ExitCode.CONFIGURATION, "ct-sync resubmit: say what to resubmit: --member, --status or --dead-letters")
    settings = settings_or_exit()
    window = (parse_instant("--since", since), parse_instant("--until", until))
    publisher = None if dry_run else build_publisher(settings)
    document: dict[str, Any] = {"dry_run": dry_run}
    if dead_letters:
        document["dead_letters"] = _replay_dead_letters(settings, publisher, quiet=as_json)
    plan = Plan()
    if member or statuses:
        plan, queued = _resubmit_members(settings, publisher, member or [], statuses, window, force=force)
        document["members"] = [
            {"member_number": c.member_number, "why": c.why, "event_id": queued[c.member_number]} for c in plan.queue
        ]
        document["refused"] = [{"member_number": c.member_number, "resubmits": n} for c, n in plan.refused]
        document["deleted"] = [{"member_number": c.member_number, "reason": why} for c, why in plan.deleted]
        document["unknown"] = plan.unknown
        if not as_json:
            _print_resubmit(plan, queued, dry_run=dry_run)
    if as_json:
        print_json(document)
    if plan.unknown or plan.refusals():
        raise typer.Exit(int(ExitCode.MEMBER_PROBLEM))


def _replay_dead_letters(settings: Settings, publisher: EventPublisher | None, *, quiet: bool) -> list[dict[str, Any]]:
    """Every dead letter queued again (`publisher`), or listed (a dry run: no publisher); said unless `quiet`."""
    from sync_worker.bootstrap import build_dead_letters

    queue = build_dead_letters(settings)
    if publisher is None:
        letters = or_exit(lambda: queue.peek(limit=2**31))
    else:
        replayed = or_exit(lambda: queue.replay(None, publisher))
        letters = replayed.done + replayed.left
    if not quiet:
        verb = "would replay" if publisher is None else "replayed"
        for letter in letters:
            say(f"{verb} {letter.member_number or '(no member number: left in place)'}: {letter.reason}")
        say(f"{len(letters)} dead letter(s)")
    return [{"member_number": dead.member_number, "reason": dead.reason} for dead in letters]


def _resubmit_members(
    settings: Settings,
    publisher: EventPublisher | None,
    members: list[str],
    statuses: list[str],
    window: tuple[datetime | None, datetime | None],
    *,
    force: bool,
) -> tuple[Plan, dict[str, str | None]]:
    """The plan for these members or statuses, published unless a dry run (no publisher); the event id of each."""
    from sync_worker.bootstrap import build_ledger, build_member_store, build_privacy_register
    from sync_worker.core.resubmit import plan_resubmit, publish_plan

    store = or_exit(lambda: build_member_store(settings))
    ledger = or_exit(lambda: build_ledger(settings))
    privacy = or_exit(lambda: build_privacy_register(settings))
    plan = or_exit(
        lambda: plan_resubmit(
            store=store, history=ledger, members=members, statuses=statuses, since=window[0], until=window[1],
            max_resubmits=settings.worker.max_resubmits, force=force, privacy=privacy,
        )
    )  # fmt: skip
    queued: dict[str, str | None] = {candidate.member_number: None for candidate in plan.queue}
    if publisher is not None:
        with Progress(console=err_console, transient=True) as bar:
            task = bar.add_task("resubmitting", total=len(plan.queue))
            events = or_exit(lambda: publish_plan(plan, publisher, progress=lambda n: bar.advance(task, n)))
        queued.update((event.member_number, event.event_id) for event in events)
    return plan, queued


def _print_resubmit(plan: Plan, queued: dict[str, str | None], *, dry_run: bool) -> None:
    for number in plan.unknown:
        err_console.print(f"no member {number} in Siebel", markup=False)
    for member_number, why in plan.refusals():
        err_console.print(f"refused {member_number}: {why}", markup=False)
    for candidate in plan.queue:
        if dry_run:
            say(f"would queue {candidate.member_number} ({candidate.why})")
        else:
            say(f"queued {candidate.member_number}: event {queued[candidate.member_number]}")
    say(f"{len(plan.queue)} member(s) {'would be ' if dry_run else ''}queued")


@app.command(rich_help_panel="Sync members")
def status(
    member: Annotated[str | None, typer.Option("--member", help="one member's history")] = None,
    as_json: AsJson = False,
) -> None:
    """Members by status, attempts of the last 24 h, each worker's outage breaker (paused since, next probe),
    recent failures and poll runs; or one member's history (each attempt with its source: intake, poll, publish,
    resubmit, automatic)."""
    from sync_worker.bootstrap import build_ledger, build_operations_log, build_run_ledger
    from sync_worker.cli.views import attempt_json, attempts_table, overview_json, overview_tables, read_overview

    settings = settings_or_exit()
    ledger = or_exit(lambda: build_ledger(settings))
    if member is None:
        runs = or_exit(lambda: build_run_ledger(settings))
        operations = or_exit(lambda: build_operations_log(settings))
        letters = _dead_letter_count(settings)
        overview = or_exit(lambda: read_overview(ledger, runs, operations, now=datetime.now(UTC), dead_letters=letters))
        if as_json:
            print_json(overview_json(overview))
        else:
            out_console.print(overview_tables(overview))
        return
    history = or_exit(lambda: ledger.history(member))
    if not history:
        fail(ExitCode.MEMBER_PROBLEM, f"no attempts recorded for member {member}")
    if as_json:
        print_json({"member_number": member, "attempts": [attempt_json(row) for row in history]})
    else:
        out_console.print(attempts_table(f"History of {member}, newest first", history))


def _dead_letter_count(settings: Settings) -> int | None:
    """How many dead letters wait; None when the broker cannot be asked (status still shows the rest)."""
    from sync_worker.bootstrap import build_dead_letters
    from sync_worker.core.errors import CtSyncError

    try:
        return build_dead_letters(settings).count()
    except CtSyncError:
        return None


@app.command(rich_help_panel="Sync members")
def preview(member: Annotated[str, typer.Option("--member", help="the Member Number")]) -> None:
    """Show the CrowdTwist payload a member maps to and whether it passes CrowdTwist's rules. Calls nothing."""
    from sync_worker.bootstrap import build_member_store
    from sync_worker.core.mapping import map_member
    from sync_worker.core.member import skip_reason

    settings = settings_or_exit()
    with closing(or_exit(lambda: build_member_store(settings))) as store:
        found = or_exit(lambda: store.get_member(member))
    if found is None:
        fail(ExitCode.MEMBER_PROBLEM, f"ct-sync preview: no member {member} in Siebel")
    reason = skip_reason(found, program_id=settings.siebel.program_id)
    mapping = map_member(found, settings.defaults)
    out_console.print_json(data=mapping.payload.body())
    if reason:
        out_console.print(f"not sent: {reason}")
    if mapping.accepted:
        out_console.print("passes CrowdTwist's documented rules")
    else:
        out_console.print(f"Data Error: {mapping.error_text}", markup=False)
        raise typer.Exit(int(ExitCode.MEMBER_PROBLEM))


@app.command(rich_help_panel="Sync members")
def check(as_json: AsJson = False) -> None:
    """Validate the settings and reach every configured system. Exit 0: all answered; 2: a configuration problem
    (a refused login, a server that is not the one named); 75: a system unreachable."""
    from sync_worker.cli.check import run_checks, worst_problem

    settings = settings_or_exit()
    results = run_checks(settings)
    problem = worst_problem(results)
    code = {None: ExitCode.OK, "configuration": ExitCode.CONFIGURATION, "unreachable": ExitCode.UNREACHABLE}[problem]
    if as_json:
        checks = [{"system": "settings", "result": "ok", "detail": str(settings.data_dir.resolve())}]
        checks += [{"system": r.system, "result": r.problem or "ok", "detail": r.detail} for r in results]
        print_json({"exit_code": int(code), "checks": checks})
    else:
        table = Table(title="ct-sync check")
        table.add_column("system")
        table.add_column("result")
        table.add_column("detail", overflow="fold")
        table.add_row("settings", "ok", str(settings.data_dir.resolve()))
        for result in results:
            table.add_row(result.system, f"[red]{result.problem}[/]" if result.problem else "ok", Text(result.detail))
        out_console.print(table)
    if code is not ExitCode.OK:
        raise typer.Exit(int(code))
