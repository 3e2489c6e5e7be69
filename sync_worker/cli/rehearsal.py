"""`ct-sync demo`: try ct-sync with no production system, the whole chain in one process, then the console on it
until Enter (`sandbox.py` serves the emulators to point a real worker at). Heavy imports wait inside the command,
so `ct-sync --help` stays quick.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from sync_worker.cli.app import app, out_console, say, settings_or_exit

if TYPE_CHECKING:
    from config import Settings
    from sync_worker.cli.demo import DemoReport


@app.command(rich_help_panel="Try it without production systems")
def demo(
    with_rest: Annotated[bool, typer.Option("--with-rest", help="go through the Siebel REST emulator")] = False,
    no_console: Annotated[bool, typer.Option("--no-console", help="end at once; serve no console")] = False,
) -> None:
    """Run the whole chain on embedded defaults (no servers) and print each member's outcome; then serve the console
    on it until Enter is pressed."""
    from sync_worker.cli.demo import running_demo

    settings = settings_or_exit()
    out_console.print(
        "[bold]ct-sync demo[/]: sandbox CrowdTwist, SQLite Siebel stand-in, embedded queue, intake, worker"
    )
    with running_demo(settings, with_rest=with_rest) as report:
        _print_report(report)
        if no_console:
            return
        if not sys.stdin.isatty():
            out_console.print("No console: standard input is not a terminal (nobody could press Enter).")
            return
        _serve_console_until_enter(report.settings)


def _serve_console_until_enter(settings: Settings) -> None:
    from sync_worker.bootstrap import build_console
    from sync_worker.core.errors import ConfigurationError
    from sync_worker.http import BackgroundServer

    console_app, backend = build_console(settings)
    host, port = settings.console.host, settings.console.port
    try:
        with BackgroundServer(console_app, host=host, port=port, setting="CTSYNC_CONSOLE__PORT") as server:
            out_console.print(
                f"Console on {server.url} (the worker keeps running: resubmit from the page). Press Enter to stop.",
                markup=False,
                highlight=False,
            )
            with contextlib.suppress(EOFError):  # the input closed: as good as Enter
                input()
    except ConfigurationError as exc:  # the port is taken
        say(f"No console: {exc.message}")
    except RuntimeError:
        say(f"No console: {host}:{port} cannot be served (set CTSYNC_CONSOLE__HOST and __PORT)")
    finally:
        backend.close()


def _print_report(report: DemoReport) -> None:
    table = Table(title="Members after the sync (as a Siebel admin sees them)")
    table.add_column("Member Number", no_wrap=True, overflow="ignore")  # copied into commands: never wrapped
    for column in ("story", "CT Sync Status", "CT Sync Error", "CT User Id"):
        table.add_column(column, overflow="fold")
    for row in report.rows:
        table.add_row(row.member_number, row.story, row.status, row.error, row.ct_user_id)
    out_console.print(table)
    calls = ", ".join(f"{operation} {count}" for operation, count in sorted(report.ct_calls.items()))
    out_console.print(f"CrowdTwist calls spent: {sum(report.ct_calls.values())} ({calls})")
    for email in report.emails:
        say(f"Failure email written to: {email}")
    if report.resubmit:
        say(f"After fixing the cause in Siebel, queue them again with: {report.resubmit}")
    if report.segment is not None:
        segment = report.segment
        out_console.print(
            f"Segment file {segment.file_name} ({segment.rows} members CrowdTwist knows) delivered to "
            f"{segment.destination}; its first lines:",
            markup=False,
            soft_wrap=True,
        )
        for line in segment.first_lines:
            out_console.print(f"  {line}", markup=False, highlight=False)
    say(f"Demo files are under {report.data_dir}, its log in {report.log_file} ({report.seconds:.1f} s)")
