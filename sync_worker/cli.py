"""The `ct-sync` command line: one console script, thin commands that build from `Settings` and call in.

Exit codes (design.md): 0 ok, 1 a member/data problem, 2 configuration or usage error, 75 a system unreachable.
"""

from __future__ import annotations

import enum
import sys
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from config import Settings, SettingsError, load_settings
from config.logging import configure_logging


class ExitCode(enum.IntEnum):
    OK = 0
    MEMBER_PROBLEM = 1
    CONFIGURATION = 2
    UNREACHABLE = 75


app = typer.Typer(
    name="ct-sync",
    help="Keep Oracle CrowdTwist in step with Siebel Loyalty.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)
out_console = Console()

MemberNumbers = Annotated[list[str] | None, typer.Option("--member", help="a Member Number (repeatable)")]


def fail(code: ExitCode, message: str) -> NoReturn:
    """Print one line to stderr and exit with a design.md exit code."""
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(int(code))


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        fail(ExitCode.CONFIGURATION, f"ct-sync: configuration error: {exc}")


def not_available_yet(command: str) -> NoReturn:
    fail(ExitCode.CONFIGURATION, f"ct-sync {command}: not available yet in this version.")


@app.callback()
def main_callback(
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "INFO",
    log_json: Annotated[bool | None, typer.Option("--log-json/--log-console", help="force the log format")] = None,
) -> None:
    """Keep Oracle CrowdTwist in step with Siebel Loyalty."""
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        fail(
            ExitCode.CONFIGURATION,
            f"ct-sync: --log-level must be DEBUG, INFO, WARNING or ERROR, not {log_level}",
        )
    configure_logging(level=log_level, json=log_json)


@app.command()
def demo() -> None:
    """Run the whole chain on embedded defaults (no servers) and print each member's outcome."""
    not_available_yet("demo")


@app.command()
def worker() -> None:
    """Consume member events and sync them to CrowdTwist (long-running)."""
    not_available_yet("worker")


@app.command()
def intake() -> None:
    """Serve the HTTP endpoint Siebel's workflow posts member events to (and its /openapi.json)."""
    not_available_yet("intake")


@app.command()
def poll(
    every: Annotated[str | None, typer.Option(help="repeat at this interval, e.g. 5m; default: once")] = None,
) -> None:
    """Publish an event for every member changed in Siebel since the last watermark."""
    not_available_yet("poll")


@app.command()
def publish(
    member: Annotated[str, typer.Option("--member", help="the Member Number")],
    event: Annotated[str, typer.Option(help="enroll or update")] = "update",
) -> None:
    """Publish one member event."""
    not_available_yet("publish")


@app.command()
def resubmit(
    member: MemberNumbers = None,
    status: Annotated[list[str] | None, typer.Option(help='a CT Sync Status, e.g. "CT Failure"')] = None,
    since: Annotated[str | None, typer.Option(help="ISO time: failures at or after")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time: failures before")] = None,
    dead_letters: Annotated[bool, typer.Option("--dead-letters", help="replay the dead-letter queue")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be queued")] = False,
    force: Annotated[bool, typer.Option("--force", help="past the resubmit limit")] = False,
) -> None:
    """Queue members again: by Member Number, by status, by time window, or from the dead-letter queue."""
    not_available_yet("resubmit")


@app.command()
def status(
    member: Annotated[str | None, typer.Option("--member", help="one member's history")] = None,
) -> None:
    """Counts by status and recent failures, or one member's history."""
    not_available_yet("status")


@app.command()
def preview(member: Annotated[str, typer.Option("--member", help="the Member Number")]) -> None:
    """Show the CrowdTwist payload a member maps to and whether it passes CrowdTwist's rules. Calls nothing."""
    not_available_yet("preview")


@app.command()
def check() -> None:
    """Validate the settings and reach every configured system; the exit code says which failed."""
    settings = settings_or_exit()
    table = Table(title="ct-sync check")
    table.add_column("system")
    table.add_column("result")
    table.add_row("settings", "ok")
    table.add_row("data directory", str(settings.data_dir.resolve()))
    out_console.print(table)


@app.command()
def sandbox() -> None:
    """Serve the CrowdTwist and Siebel emulators on 127.0.0.1."""
    not_available_yet("sandbox")


def main() -> None:
    """Console-script entrypoint."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
