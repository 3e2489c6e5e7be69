"""The `ct-sync` command line: one console script, thin commands that build from `Settings` and call in.

    app.py        the Typer app, exit codes, one-line failures
    rehearsal.py  `demo`: try it with no production system, in one process
    sandbox.py    `sandbox`, `sandbox seed`, `sandbox faults`: emulators to rehearse on, seeded, faults switched
    sync.py       `worker`, `intake`, `poll`, `publish`, `resubmit`, `status`, `preview`, `check`
    segment.py    `segment export`: segment files to CrowdTwist's SFTP folder
    jobs.py       `jobs list|run|runs|log|stop`, `scheduler`: jobs and groups of the config file
    dead_letters.py  `dead-letters list|replay|discard`: messages the worker could never process
    privacy.py    `privacy access|delete|status|restore`: data-subject requests answered in CrowdTwist
    console.py    `console`: the web console
    demo.py       the demo's chain and sample members
    check.py      the checks `check` runs
    progress.py   "N of M" with rate and ETA: a bar on a terminal, a log line otherwise
    views.py      the tables (and JSON) `status` and `jobs` print

Every command builds through the composition root (`sync_worker.bootstrap`); only the rehearsal commands (`demo`,
`sandbox`) reach for the `sandbox` package and the SQLite stand-in they seed, and `check` for each system's own
probe. Nothing imports the CLI.
"""

from __future__ import annotations

import sys
import warnings

# Importing a command module registers its commands on `app`, in the order `ct-sync --help` lists them.
from sync_worker.cli import rehearsal, sandbox, segment, sync, jobs, dead_letters, privacy, console  # noqa: F401  isort: skip
from sync_worker.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entrypoint."""
    # kombu's SQLAlchemy transport uses a loader option SQLAlchemy 2.1 deprecates; nothing for a user to act on.
    warnings.filterwarnings("ignore", message="The ``noload`` loader strategy is deprecated")
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
