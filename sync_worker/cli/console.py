"""`ct-sync console`: the web console (design.md, Part 2, "Console"), served until SIGTERM or Ctrl-C."""

from __future__ import annotations

from sync_worker.cli.app import app, or_exit, out_console, settings_or_exit


@app.command(rich_help_panel="Console")
def console() -> None:
    """Serve the web console: members per status, failures, one member's history, dead letters, job runs; resubmit
    and replay from the page (127.0.0.1:8081 by default; a token is required beyond loopback)."""
    from sync_worker.bootstrap import build_console
    from sync_worker.http import serve_forever

    settings = settings_or_exit()
    console_app, backend = or_exit(lambda: build_console(settings))
    where = settings.console

    def listening(url: str) -> None:
        out_console.print(f"ct-sync console on {url}", markup=False, highlight=False)

    try:
        or_exit(
            lambda: serve_forever(
                console_app,
                host=where.host,
                port=where.port,
                setting="CTSYNC_CONSOLE__PORT",
                name="console",
                listening=listening,
            )
        )  # a port already taken: one line naming the setting, exit 2, and no URL (it would be another's)
    finally:
        backend.close()
