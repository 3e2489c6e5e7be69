"""Commands to try ct-sync with no production system: `demo` (the whole chain in one process, then the console on
it until Enter) and `sandbox` (the CrowdTwist and Siebel REST emulators and an SFTP drop folder on 127.0.0.1, to
point a real worker at). Heavy imports wait inside the commands, so `ct-sync --help` stays quick.
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


@app.command(rich_help_panel="Try it without production systems")
def sandbox(
    port: Annotated[int, typer.Option(help="CrowdTwist sandbox port")] = 8765,
    siebel_port: Annotated[int, typer.Option(help="Siebel REST emulator port")] = 8766,
    sftp_port: Annotated[int, typer.Option(help="SFTP drop folder port (CrowdTwist's segment folder)")] = 8022,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="the key every CrowdTwist call must carry; a wrong or missing one gets 403 "
            "(default: CTSYNC_CROWDTWIST__API_KEY; with neither, any key is accepted)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the CrowdTwist and Siebel REST emulators and an SFTP drop folder on 127.0.0.1 until interrupted."""
    from crowdtwist_client.sandbox import SandboxState, create_sandbox_app
    from crowdtwist_client.sandbox.sftp import SANDBOX_USER, SandboxSftpServer, ensure_sandbox_keys
    from siebel_adapter.emulator import SiebelEmulator
    from siebel_adapter.sqlite_store import SqliteMemberStore
    from sync_worker.emulators import SiebelEmulatorServer
    from sync_worker.http import serve_forever

    settings = settings_or_exit()
    configured_key = settings.crowdtwist.api_key.get_secret_value() if settings.crowdtwist.api_key else None
    required_key = api_key or configured_key
    username = settings.siebel.username or "CTSYNC"
    password = settings.siebel.password.get_secret_value() if settings.siebel.password else "sandbox"
    store = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)
    emulator = SiebelEmulator(store, username=username, password=password)
    keys = ensure_sandbox_keys(settings.data_dir / "sandbox-sftp-keys", port=sftp_port)
    with (
        SiebelEmulatorServer(emulator, port=siebel_port) as siebel,
        SandboxSftpServer(settings.data_dir / "sandbox-sftp", keys, port=sftp_port) as sftp,
    ):
        out_console.print(f"Siebel REST emulator on {siebel.base_url} (Basic auth as {username}), data in {store.path}")
        out_console.print(
            f"SFTP drop folder on 127.0.0.1:{sftp.port}, files land in {sftp.folder}; send segments there with\n"
            f"  CTSYNC_SFTP__HOST=127.0.0.1 CTSYNC_SFTP__PORT={sftp.port} CTSYNC_SFTP__USERNAME={SANDBOX_USER} "
            f"CTSYNC_SFTP__KEY_FILE={keys.user_key.resolve()} CTSYNC_SFTP__KNOWN_HOSTS={keys.known_hosts.resolve()}",
            markup=False,
            soft_wrap=True,
        )
        source = "--api-key" if api_key else "CTSYNC_CROWDTWIST__API_KEY"
        key_rule = f"requires the API key of {source}" if required_key else "accepts any API key (none configured)"
        out_console.print(
            f"CrowdTwist sandbox on http://127.0.0.1:{port}, {key_rule} (faults, rules and counters under /_sandbox/)"
        )
        serve_forever(
            create_sandbox_app(SandboxState(api_key=required_key)),
            host="127.0.0.1", port=port, setting="--port", name="CrowdTwist sandbox",
        )  # fmt: skip
