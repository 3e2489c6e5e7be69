"""The `ct-sync` Typer app and what every command shares: exit codes, one-line failures, settings loaded once, and
how a command printed for the user to run next starts.

Exit codes (design.md): 0 ok, 1 a member/data problem, 2 configuration or usage error, 75 a system unreachable.
"""

from __future__ import annotations

import enum
import json
import os
import shlex
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console

from config import Settings, SettingsError, load_settings
from config.logging import configure_logging
from sync_worker.core.errors import ConfigurationError, CtSyncError, outage_text


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


AsJson = Annotated[bool, typer.Option("--json", help="JSON instead of a table, for scripts")]


def print_json(document: object) -> None:
    """A JSON document on stdout, whole: plain print, as rich would wrap long lines."""
    print(json.dumps(document, indent=2))


def say(line: str) -> None:
    """A plain line on stdout, never wrapped nor styled: numbers, names and paths are copied from here."""
    out_console.print(line, markup=False, highlight=False, soft_wrap=True)


def ct_sync_command() -> str:
    """How a printed command should start so that it runs as printed: `ct-sync` when PATH finds this very
    installation, else the path of the script beside the running interpreter (`.venv/bin/ct-sync` when the virtual
    environment is not activated, as after `scripts/demo`), relative to the working directory when under it."""
    beside = Path(sys.executable).with_name("ct-sync")
    found = shutil.which("ct-sync")
    if not beside.is_file() or (found is not None and os.path.samefile(found, beside)):
        return "ct-sync"
    try:
        shown = beside.absolute().relative_to(Path.cwd())
    except ValueError:
        shown = beside.absolute()
    return shlex.quote(str(shown))


def stop_on_signals(stopping: threading.Event) -> None:
    """SIGTERM or Ctrl-C: a running job or poll stops at its next safe point (recorded Stopped), then the command
    ends."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stopping.set())


def fail(code: ExitCode, message: str) -> NoReturn:
    """Print one line to stderr and exit with a design.md exit code."""
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(int(code))


@dataclass(frozen=True)
class LogOptions:
    """`--log-level` and `--log-json/--log-console` as given; None: the settings (`CTSYNC_LOG__…`) decide."""

    level: str | None
    json: bool | None


# Set by the app's callback for the command it runs: the options outrank the settings the command loads later.
_log_options: ContextVar[LogOptions | None] = ContextVar("log_options", default=None)


def settings_or_exit() -> Settings:
    """The settings, loaded once by the command; the log then follows them, unless the options said otherwise."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        fail(ExitCode.CONFIGURATION, f"ct-sync: configuration error: {exc}")
    given = _log_options.get() or LogOptions(None, None)
    formats = {"auto": None, "json": True, "console": False}
    configure_logging(
        level=given.level or settings.log.level,
        json=given.json if given.json is not None else formats[settings.log.format],
    )
    return settings


@app.callback()
def main_callback(
    log_level: Annotated[
        str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR [default: CTSYNC_LOG__LEVEL, INFO]")
    ] = None,
    log_json: Annotated[
        bool | None,
        typer.Option("--log-json/--log-console", help="the log format [default: CTSYNC_LOG__FORMAT: by terminal]"),
    ] = None,
) -> None:
    """Keep Oracle CrowdTwist in step with Siebel Loyalty."""
    if log_level is not None and log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        fail(
            ExitCode.CONFIGURATION,
            f"ct-sync: --log-level must be DEBUG, INFO, WARNING or ERROR, not {log_level}",
        )
    _log_options.set(LogOptions(log_level.upper() if log_level else None, log_json))
    configure_logging(level=log_level or "INFO", json=log_json)  # until a command has read the settings


T = TypeVar("T")


def or_exit(call: Callable[[], T]) -> T:
    """Run `call`; a configuration problem exits 2, an unreachable system 75, each with one line (the system named
    once: `outage_text`)."""
    try:
        return call()
    except ConfigurationError as exc:
        fail(ExitCode.CONFIGURATION, f"ct-sync: {exc.message}")
    except CtSyncError as exc:
        fail(ExitCode.UNREACHABLE, f"ct-sync: {outage_text(exc)}")


def parse_instant(option: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(ExitCode.CONFIGURATION, f"ct-sync: {option} {value!r} is not an ISO time like 2026-11-22T10:00:00Z")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
