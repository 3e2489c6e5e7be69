"""The segment commands: `ct-sync segment export NAME`, a CrowdTwist segment file from Siebel members (by
`--where`) or from a member list, delivered to CrowdTwist's drop folder (design.md, "Segment export").

Exit codes: 0 delivered (members left out are reported, not a failure), 1 the run failed on its data (count file,
size, suffixes of the day used up, no member for the file without `--allow-empty`), 2 usage or configuration (bad
NAME, a `--where` field Siebel does not have, host key, login), 75 the server unreachable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress

from sync_worker.cli.app import ExitCode, app, err_console, fail, or_exit, say, settings_or_exit

if TYPE_CHECKING:
    from sync_worker.segments.export import SegmentReport, SegmentRequest

COMMAND = "ct-sync segment export"
segment_app = typer.Typer(no_args_is_help=True, help="Segment files for CrowdTwist, over SFTP.")
app.add_typer(segment_app, name="segment", rich_help_panel="Files to CrowdTwist")


@segment_app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="the segment's NAME: 1-50 of A-Z a-z 0-9 _ -")],
    where: Annotated[
        list[str] | None, typer.Option(help='a Siebel field and value, e.g. "Tier=Gold" (repeatable, ANDed)')
    ] = None,
    from_file: Annotated[Path | None, typer.Option(help="a CSV member list with a 'Member Number' column")] = None,
    count_file: Annotated[Path | None, typer.Option(help="a file holding the member list's number of lines")] = None,
    identifier: Annotated[str, typer.Option(help="ct_user_id (header CTUserID) or third_party_id")] = "ct_user_id",
    ready: Annotated[str, typer.Option(help="ready file after the data file: none, empty or count")] = "none",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="write the file locally and show it; send nothing")
    ] = False,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="send the file even with no member in it (the header only)")
    ] = False,
) -> None:
    """Export a segment of members to CrowdTwist's SFTP folder as NAME_YYYYMMDD_HHMM.csv."""
    from sync_worker.bootstrap import build_run_ledger, build_segment_export
    from sync_worker.core.errors import ConfigurationError, CtSyncError, outage_text
    from sync_worker.core.segments import SegmentError

    request = _segment_request(name, where, from_file, count_file, identifier, ready, allow_empty=allow_empty)
    settings = settings_or_exit()
    runs = or_exit(lambda: build_run_ledger(settings))
    exporter = or_exit(lambda: build_segment_export(settings, runs=runs))
    # The failure is said once the progress bar is gone: no line of it left between the error and the prompt.
    failure: tuple[ExitCode, str] | None = None
    with closing(exporter.store), _progress_bar(f"segment {name}: members read") as progress:
        try:
            report = exporter.run(request, dry_run=dry_run, progress=progress)
        except SegmentError as exc:
            failure = ExitCode(exc.exit_code), exc.message
        except ConfigurationError as exc:
            failure = ExitCode.CONFIGURATION, exc.message
        except CtSyncError as exc:
            failure = ExitCode.UNREACHABLE, outage_text(exc)
    if failure is not None:
        fail(failure[0], f"{COMMAND}: {failure[1]}")
    _print_report(report, dry_run=dry_run, destination=exporter.drop.destination)


@contextmanager
def _progress_bar(description: str) -> Iterator[Callable[[int], None]]:
    """A bar on a terminal; elsewhere (a job's log, cron mail) nothing, not even the blank line a bar leaves."""
    if not err_console.is_terminal:
        yield lambda read: None
        return
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda read: bar.update(task, completed=read)


def _segment_request(
    name: str,
    where: list[str] | None,
    from_file: Path | None,
    count_file: Path | None,
    identifier: str,
    ready: str,
    *,
    allow_empty: bool,
) -> SegmentRequest:
    """The export asked for, or a usage error (exit 2) naming the option that is wrong."""
    from sync_worker.core.segments import SegmentError, check_segment_name, parse_where
    from sync_worker.segments.export import SegmentRequest

    try:
        check_segment_name(name)
        conditions = tuple(parse_where(where)) if where else ()
    except SegmentError as exc:
        fail(ExitCode.CONFIGURATION, f"{COMMAND}: {exc.message}")
    if bool(conditions) == (from_file is not None):
        fail(ExitCode.CONFIGURATION, f"{COMMAND}: say which members: --where FIELD=VALUE or --from-file PATH")
    if count_file is not None and from_file is None:
        fail(ExitCode.CONFIGURATION, f"{COMMAND}: --count-file goes with --from-file")
    if identifier not in ("ct_user_id", "third_party_id"):
        fail(ExitCode.CONFIGURATION, f"{COMMAND}: --identifier must be ct_user_id or third_party_id, not {identifier}")
    if ready not in ("none", "empty", "count"):
        fail(ExitCode.CONFIGURATION, f"{COMMAND}: --ready must be none, empty or count, not {ready}")
    return SegmentRequest(
        name=name, where=conditions, from_file=from_file, count_file=count_file,
        identifier=identifier, ready=ready, allow_empty=allow_empty,  # type: ignore[arg-type]  # checked above
    )  # fmt: skip


def _print_report(report: SegmentReport, *, dry_run: bool, destination: str) -> None:
    if dry_run:
        say(f"dry run: would send {report.file_name} to {destination}: {report.rows} rows, {report.size} bytes")
    else:
        say(
            f"delivered {report.file_name} to {report.destination}: {report.rows} rows, {report.size} bytes, "
            f"{report.seconds:.1f} s (run {report.run_id})"
        )
    for reason, count in report.left_out.most_common():
        say(f"  left out {count}: {reason}")
    if report.left_out:
        say(f"left-out members listed in {report.left_out_file}")
    say("first lines:")
    for line in report.first_lines:
        say(f"  {line}")
    say(f"{'file written to' if dry_run else 'archived copy'}: {report.archived}")
