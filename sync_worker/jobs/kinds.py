"""What each kind of job does in a run, through ports: `segment-export`, `poll`, `resubmit` and `privacy-followup`.

Each function runs one job to its end: it says what it does in the run's log, counts into the run, calls the
run's safe point where stopping leaves nothing half-done, and raises `CtSyncError` when the run fails. `KindTable`
calls the function of the job's kind with the parts the run needs, which the composition root builds fresh for each
run (`RunParts`); one more kind is one more model in `config.settings`, one function here and one entry in the
table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from typing import Protocol, TypeVar

from config.settings import ResubmitJob
from sync_worker.core.ports import EventPublisher, MemberStore, PrivacyDeletions
from sync_worker.core.privacy import PrivacyRequests
from sync_worker.core.resubmit import ResubmitHistory, plan_resubmit, publish_plan
from sync_worker.jobs.catalog import JobDefinition
from sync_worker.jobs.context import RunContext
from sync_worker.segments.export import SegmentExport, SegmentReport, SegmentRequest


class JobKinds(Protocol):
    """Runs a job of any kind (the composition root's table of kinds, with the adapters each needs)."""

    def run(self, job: JobDefinition, context: RunContext) -> None:
        """Run to the end, counting into `context`; raise `CtSyncError` on failure, `RunStopped` when stopped."""
        ...


class PollSummary(Protocol):
    """What one pass of the change poller reports."""

    read: int
    published: int
    skipped: Counter[str]
    unreadable: int
    initial_load: bool


Summary = TypeVar("Summary", bound=PollSummary)
PageConfirmed = Callable[[PollSummary], None]  # called back by a pass after each page the broker confirmed


class RunParts(Protocol):
    """The adapters one run works with, each built when first asked for and closed when the run ends."""

    def member_store(self) -> MemberStore: ...
    def publisher(self) -> EventPublisher: ...
    def segment_export(self) -> SegmentExport: ...
    def poll_once(self) -> Callable[[PageConfirmed], PollSummary]: ...
    def resubmit_history(self) -> ResubmitHistory: ...
    def privacy_register(self) -> PrivacyDeletions: ...
    def privacy_requests(self) -> PrivacyRequests: ...


class KindTable:
    """Runs a job of any kind (`JobKinds`) with parts fresh for every run, closed when it ends: a scheduler runs
    for months, and a broken connection must not outlive the run that met it."""

    def __init__(self, parts: Callable[[ExitStack], RunParts], *, max_resubmits: int) -> None:
        self._parts = parts
        self._max_resubmits = max_resubmits
        self._kinds: dict[str, Callable[[JobDefinition, RunContext, RunParts], None]] = {
            "segment-export": self._segment_export,
            "poll": self._poll,
            "resubmit": self._resubmit,
            "privacy-followup": self._privacy_followup,
        }

    def run(self, job: JobDefinition, context: RunContext) -> None:
        with ExitStack() as resources:
            self._kinds[job.kind](job, context, self._parts(resources))

    @staticmethod
    def _segment_export(job: JobDefinition, context: RunContext, parts: RunParts) -> None:
        assert job.segment is not None  # the catalog built it for every segment-export job
        export_segment(parts.segment_export(), job.segment, context)

    @staticmethod
    def _poll(job: JobDefinition, context: RunContext, parts: RunParts) -> None:
        poll_changes(parts.poll_once(), context)

    @staticmethod
    def _privacy_followup(job: JobDefinition, context: RunContext, parts: RunParts) -> None:
        follow_privacy_requests(parts.privacy_requests(), context)

    def _resubmit(self, job: JobDefinition, context: RunContext, parts: RunParts) -> None:
        assert job.settings.kind == "resubmit"
        resubmit_by_status(
            job.settings, context, store=parts.member_store(), history=parts.resubmit_history(),
            publisher=parts.publisher(), max_resubmits=self._max_resubmits, privacy=parts.privacy_register(),
        )  # fmt: skip


def export_segment(exporter: SegmentExport, request: SegmentRequest, context: RunContext) -> None:
    report = SegmentReport(name=request.name, file_name="", run_id=context.run_id)
    try:
        exporter.export(request, report, checkpoint=context.checkpoint)
    finally:
        context.counts.update(report.counts())
    context.files.append(report.file_name)
    for reason, count in report.left_out.most_common():
        context.log(f"left out {count}: {reason}")


def poll_changes(poll_once: Callable[[PageConfirmed], Summary], context: RunContext) -> Summary:
    """One pass of the poller (`poll_once`), counted and logged into the run; the pass's own report returned."""

    def page_confirmed(report: PollSummary) -> None:
        context.counts.update(read=report.read, published=report.published)
        context.checkpoint()  # the poller has saved its place: the next pass goes on from here

    report = poll_once(page_confirmed)
    context.counts.update(poll_counts(report))
    kind = "initial load" if report.initial_load else "changes"
    context.log(f"{kind}: read {report.read}, published {report.published}, skipped {sum(report.skipped.values())}")
    for reason, count in report.skipped.most_common():
        context.log(f"skipped {count}: {reason}")
    return report


def poll_counts(report: PollSummary) -> dict[str, int]:
    """A poll run's counts, as recorded and shown by `ct-sync status`: skipped members by reason too."""
    return {
        "read": report.read,
        "published": report.published,
        "skipped": sum(report.skipped.values()),
        "unreadable": report.unreadable,
        **{f"skipped: {reason}": count for reason, count in report.skipped.most_common()},
    }


def resubmit_by_status(
    job: ResubmitJob,
    context: RunContext,
    *,
    store: MemberStore,
    history: ResubmitHistory,
    publisher: EventPublisher,
    max_resubmits: int,
    privacy: PrivacyDeletions,
) -> None:
    plan = plan_resubmit(
        store=store, history=history, statuses=job.status, max_resubmits=max_resubmits, force=False, privacy=privacy
    )
    waiting = len(plan.queue) - job.limit
    plan.queue = plan.queue[: job.limit]
    context.counts.update(queued=0, refused=len(plan.refused), deleted=len(plan.deleted), waiting=max(waiting, 0))
    context.log(f"members with status {', '.join(job.status)}: {len(plan.queue)} to queue")

    def queued(count: int) -> None:
        context.counts["queued"] += count
        context.checkpoint()  # between members: each one queued is whole

    publish_plan(plan, publisher, progress=queued)
    if plan.refused:
        numbers = ", ".join(candidate.member_number for candidate, _ in plan.refused[:20])
        context.log(f"not queued, resubmitted {max_resubmits} times already: {numbers}")
    if plan.deleted:
        context.log(
            f"not queued, deleted on a privacy request: {', '.join(c.member_number for c, _ in plan.deleted[:20])}"
        )
    if waiting > 0:
        context.log(f"{waiting} more left for the next run (limit {job.limit})")
    context.log(f"queued {context.counts['queued']}")


def follow_privacy_requests(requests: PrivacyRequests, context: RunContext) -> None:
    """`privacy status` once: every open deletion polled at CrowdTwist, counted by the status it reached."""
    followed = requests.follow_open()
    context.counts.update(followed=len(followed))
    for request in followed:
        context.counts[request.status] = context.counts.get(request.status, 0) + 1
        context.log(f"privacy request {request.request_id}: {request.status}")
    context.log(f"followed {len(followed)} open deletion request(s)")
