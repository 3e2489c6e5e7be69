"""The segment export run: members in, one CrowdTwist segment file out, delivered whole and recorded.

    1. a job run is recorded `Running` (`cli-segment-NAME.N` from the command line; a job's own run when the
       job runner calls `export`, which then stops at the run's safe points until the upload begins)
    2. members stream from the source; who does not belong is left out by reason (and listed in a report file),
       each identifier is written once, a value that would need enclosing is refused; the file is written to a
       local spool, its size checked against CrowdTwist's 128 MB as it grows (memory stays flat: one page of
       members at a time, the seen identifiers on disk); a file with no member stops here (`EmptySegment`)
       unless the request allows an empty one
    3. the file name's suffix is reserved in the ledger (always above the highest delivered that day)
    4. the drop folder receives the file (temporary name, rename, size check), then the optional ready file
    5. the delivery and the run are recorded; the file is kept under the archive folder

Nothing is sent when anything before step 4 fails; a failed upload releases its suffix and leaves no file under
the final name. Pure rules live in `sync_worker.core.segments`; this module only carries them out.
"""

from __future__ import annotations

import contextlib
import csv
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sync_worker.core.errors import CtSyncError, InvalidRecord
from sync_worker.core.member import Member
from sync_worker.core.ports import Clock, Deliveries, FileDrop, JobRuns, MemberStore, PrivacyDeletions, RunResult
from sync_worker.core.segments import (
    EmptySegment,
    Identifier,
    LeftOut,
    ReadyFile,
    SegmentTooLarge,
    check_segment_name,
    empty_segment_text,
    file_name,
    header_line,
    identifier_value,
    left_out_reason,
    needs_enclosing,
    next_suffix,
    ready_content,
    ready_name,
)
from sync_worker.segments.seen import SeenIdentifiers
from sync_worker.segments.sources import Found, check_count, from_member_list, from_siebel

KIND = "segment-export"
PREVIEW_LINES = 5
_PROGRESS_EVERY = 10_000
_WRITE_BUFFER = 1024 * 1024


@dataclass(frozen=True)
class SegmentRequest:
    """One export: the NAME and where members come from (`where` conditions, or a member list)."""

    name: str
    where: tuple[tuple[str, str], ...] = ()
    from_file: Path | None = None
    count_file: Path | None = None
    identifier: Identifier = "ct_user_id"
    ready: ReadyFile = "none"
    allow_empty: bool = False  # send a file of the header alone when no member belongs in it
    job: str | None = None  # the job this run belongs to; the command line's is `cli-segment-NAME`

    @property
    def job_name(self) -> str:
        return self.job or f"cli-segment-{self.name}"


@dataclass
class SegmentReport:
    """What a run did, for the summary the CLI prints and the run record."""

    name: str
    file_name: str
    rows: int = 0
    size: int = 0
    left_out: Counter[LeftOut] = field(default_factory=Counter)
    first_lines: list[str] = field(default_factory=list)
    left_out_file: Path | None = None
    archived: Path | None = None
    destination: str = ""
    run_id: str | None = None
    seconds: float = 0.0
    dry_run: bool = False

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "bytes": self.size,
            **{f"left out: {reason}": count for reason, count in self.left_out.items()},
        }


@dataclass
class SegmentExport:
    """Wired with ports; the CLI (and later the scheduler) builds it from `Settings`."""

    store: MemberStore
    drop: FileDrop
    deliveries: Deliveries
    runs: JobRuns
    privacy: PrivacyDeletions
    clock: Clock
    program_id: str | None
    max_bytes: int
    spool_dir: Path
    archive_dir: Path
    trigger: str = "cli"

    def run(
        self, request: SegmentRequest, *, dry_run: bool = False, progress: Callable[[int], None] | None = None
    ) -> SegmentReport:
        """The command line's export, recorded as a run of `cli-segment-NAME` (a dry run only writes the file
        locally and says what would be sent, and records nothing). Raises a `SegmentError` or the port's
        `CtSyncError`; the run is recorded `Failed` with that error."""
        check_segment_name(request.name)
        run_id = None
        if not dry_run:
            run_id = self.runs.start_run(request.job_name, kind=KIND, trigger=self.trigger, at=self.clock.now())
        report = SegmentReport(name=request.name, file_name="", run_id=run_id, dry_run=dry_run)
        try:
            self.export(request, report, progress=progress)
        except CtSyncError as exc:
            if run_id is not None:
                self._log(run_id, f"failed: {exc.message}")
                self.runs.finish_run(
                    run_id, RunResult("Failed", counts=report.counts(), error=exc.message), at=self.clock.now()
                )
            raise
        if run_id is not None:
            result = RunResult("Success", counts=report.counts(), files=[report.file_name])
            self.runs.finish_run(run_id, result, at=self.clock.now())
        return report

    def export(
        self,
        request: SegmentRequest,
        report: SegmentReport,
        *,
        progress: Callable[[int], None] | None = None,
        checkpoint: Callable[[], None] = lambda: None,
    ) -> None:
        """Write the segment and deliver it, filling `report`, within the run `report.run_id` (None: a dry run);
        the caller records the run's end. `checkpoint` is called at every safe point (while members are read,
        and last before the upload) and may raise `RunStopped`: nothing is sent then."""
        check_segment_name(request.name)
        started = self.clock.now()
        began = self.clock.monotonic()
        run_id = report.run_id
        self._log(run_id, f"segment {request.name}: {_describe(request)}")
        spool = self._write(request, report, progress, checkpoint)
        if report.rows == 0 and not request.allow_empty:
            for written in (spool, report.left_out_file):
                if written is not None:
                    written.unlink(missing_ok=True)
            allow = "allow_empty = true in the job" if request.job else "--allow-empty"
            members = _which_members(request)
            raise EmptySegment(empty_segment_text(request.name, members=members, left_out=report.left_out, allow=allow))
        if run_id is None:
            highest = self.deliveries.highest_suffix(request.name, started.date())
            report.file_name = file_name(request.name, started.date(), next_suffix(started, highest_delivered=highest))
            report.archived = spool
        else:
            try:
                checkpoint()
            except BaseException:
                for written in (spool, report.left_out_file):
                    if written is not None:
                        written.unlink(missing_ok=True)
                raise
            self._deliver(request, report, spool, started=started, run_id=run_id)
            self._log(run_id, f"delivered {report.file_name}: {report.rows} rows, {report.size} bytes")
        report.seconds = self.clock.monotonic() - began

    # -- writing -------------------------------------------------------------------------------------------------

    def _write(
        self,
        request: SegmentRequest,
        report: SegmentReport,
        progress: Callable[[int], None] | None,
        checkpoint: Callable[[], None],
    ) -> Path:
        """Stream members into the spool file and the left-out report; returns the spool file."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{request.name}.{report.run_id or 'dry-run'}"
        spool = self.spool_dir / f"{stem}.csv"
        left_out_path = self.spool_dir / f"{stem}.left-out.csv"
        if request.from_file is not None and request.count_file is not None:
            check_count(request.from_file, request.count_file)
        seen = SeenIdentifiers()
        try:
            with (
                spool.open("w", encoding="utf-8", newline="", buffering=_WRITE_BUFFER) as out,
                left_out_path.open("w", encoding="utf-8", newline="") as left_out_file,
            ):
                left_out = csv.writer(left_out_file, lineterminator="\n")
                left_out.writerow(["Member Number", "reason"])
                header = header_line(request.identifier)
                out.write(header)
                report.size = len(header.encode())
                report.first_lines.append(header.rstrip("\n"))
                for seen_count, (reference, found) in enumerate(self._members(request), start=1):
                    reason, value = self._place(found, request.identifier, seen)
                    if reason is not None:
                        report.left_out[reason] += 1
                        left_out.writerow([reference, reason])
                    else:
                        line = value + "\n"
                        report.size += len(line.encode())
                        if report.size > self.max_bytes:
                            raise SegmentTooLarge(
                                f"segment {request.name} grows past {self.max_bytes} bytes at row {report.rows + 1} "
                                "(CTSYNC_SFTP__MAX_FILE_BYTES; CrowdTwist accepts at most 128 MB): nothing sent"
                            )
                        out.write(line)
                        report.rows += 1
                        if len(report.first_lines) <= PREVIEW_LINES:
                            report.first_lines.append(value)
                    if seen_count % _PROGRESS_EVERY == 0:
                        checkpoint()
                        if progress is not None:
                            progress(seen_count)
        except BaseException:
            spool.unlink(missing_ok=True)
            left_out_path.unlink(missing_ok=True)
            raise
        finally:
            seen.close()
        report.left_out_file = left_out_path
        return spool

    def _members(self, request: SegmentRequest) -> Iterator[Found]:
        if request.from_file is not None:
            return from_member_list(self.store, request.from_file)
        return from_siebel(self.store, request.where, option="where" if request.job else "--where")

    def _place(
        self, found: Member | InvalidRecord | None, identifier: Identifier, seen: SeenIdentifiers
    ) -> tuple[LeftOut | None, str]:
        """Why this member stays out of the file, or None and the value to write."""
        if found is None:
            return LeftOut.UNKNOWN, ""
        if isinstance(found, InvalidRecord):
            return LeftOut.INVALID_RECORD, ""
        deletion = self.privacy.deletion_request(found.member_number)
        reason = left_out_reason(found, program_id=self.program_id, privacy_request=deletion)
        if reason is not None:
            return reason, ""
        value = identifier_value(found, identifier)
        if needs_enclosing(value):
            return LeftOut.NEEDS_ENCLOSING, ""
        if not seen.add(value):
            return LeftOut.DUPLICATE, ""
        return None, value

    # -- delivering ----------------------------------------------------------------------------------------------

    def _deliver(
        self, request: SegmentRequest, report: SegmentReport, spool: Path, *, started: datetime, run_id: str
    ) -> None:
        day = started.date()
        suffix = self.deliveries.reserve_suffix(
            request.name, day, propose=lambda highest: next_suffix(started, highest_delivered=highest), run_id=run_id
        )
        report.file_name = file_name(request.name, day, suffix)
        report.destination = self.drop.destination
        self._log(run_id, f"uploading {report.file_name} ({report.size} bytes) to {self.drop.destination}")
        try:
            delivery = self.drop.deliver(spool, report.file_name)
        except BaseException:
            self.deliveries.release_suffix(request.name, day, suffix)
            spool.unlink(missing_ok=True)
            raise
        self.deliveries.mark_delivered(
            request.name, day, suffix, file_name=report.file_name, rows=report.rows, size=delivery.size
        )
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        report.archived = spool.replace(self.archive_dir / report.file_name)
        if report.left_out_file is not None:
            report.left_out_file = report.left_out_file.replace(
                self.archive_dir / report.file_name.replace(".csv", ".left-out.csv")
            )
        content = ready_content(request.ready, rows=report.rows)
        if content is not None:
            ready = self.spool_dir / ready_name(report.file_name)
            ready.write_text(content, encoding="utf-8")
            try:
                self.drop.deliver(ready, ready.name)
            finally:
                with contextlib.suppress(OSError):
                    ready.unlink()
            self._log(run_id, f"ready file {ready.name} delivered")

    def _log(self, run_id: str | None, line: str) -> None:
        if run_id is not None:
            self.runs.log(run_id, line, at=self.clock.now())


def _which_members(request: SegmentRequest) -> str:
    """The members asked for, as a sentence ends: "in Siebel with Tier=Gold", "listed in lapsed.csv"."""
    if request.from_file is not None:
        return f"listed in {request.from_file.name}"
    return "in Siebel with " + " AND ".join(f"{field_name}={value}" for field_name, value in request.where)


def _describe(request: SegmentRequest) -> str:
    if request.from_file is not None:
        return f"members listed in {request.from_file.name}, identifier {request.identifier}"
    conditions = " AND ".join(f"{field_name}={value}" for field_name, value in request.where)
    return f"Siebel members where {conditions}, identifier {request.identifier}"
