"""The jobs and groups of the TOML file, checked once at start; which groups hold a job.

`config.settings` checks each table's shape (kind, schedule, options); here the rules of the job's own command are
applied too (a segment NAME, `where` conditions), so a wrong job stops `ct-sync scheduler` and `ct-sync jobs` at
start with one line naming it, as a wrong setting does (exit 2).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from config.settings import GroupSettings, Job, SegmentExportJob, Settings
from sync_worker.core.errors import ConfigurationError
from sync_worker.core.segments import SegmentError, check_segment_name, parse_where
from sync_worker.segments.export import SegmentRequest

GROUP_KIND = "group"  # the kind recorded for a group's own run


@dataclass(frozen=True)
class JobDefinition:
    name: str
    settings: Job
    groups: tuple[str, ...] = ()
    segment: SegmentRequest | None = None  # a segment-export job's request, checked at start

    @property
    def kind(self) -> str:
        return self.settings.kind


@dataclass(frozen=True)
class GroupDefinition:
    name: str
    settings: GroupSettings
    jobs: tuple[JobDefinition, ...]
    groups: tuple[str, ...] = ()
    kind: str = GROUP_KIND


Definition = JobDefinition | GroupDefinition


class Catalog:
    """Every job and group, by name (the two never share one)."""

    def __init__(self, jobs: Mapping[str, Job], groups: Mapping[str, GroupSettings]) -> None:
        holders: dict[str, list[str]] = {}
        for group_name, group in groups.items():
            for job_name in group.jobs:
                holders.setdefault(job_name, []).append(group_name)
        self.jobs = {
            name: JobDefinition(name, job, tuple(holders.get(name, ())), _segment_request(name, job))
            for name, job in jobs.items()
        }
        self.groups = {
            name: GroupDefinition(name, group, tuple(self.jobs[job] for job in group.jobs))
            for name, group in groups.items()
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> Catalog:
        return cls(settings.jobs, settings.groups)

    def get(self, name: str) -> Definition | None:
        return self.jobs.get(name) or self.groups.get(name)

    def __iter__(self) -> Iterator[Definition]:
        yield from self.jobs.values()
        yield from self.groups.values()


def _segment_request(name: str, job: Job) -> SegmentRequest | None:
    if not isinstance(job, SegmentExportJob):
        return None
    try:
        check_segment_name(job.segment)
        where = tuple(parse_where(job.where)) if job.where else ()
    except SegmentError as exc:
        raise ConfigurationError(f"[jobs.{name}] {exc.message}") from None
    return SegmentRequest(
        name=job.segment, where=where, from_file=job.from_file, count_file=job.count_file,
        identifier=job.identifier, ready=job.ready, allow_empty=job.allow_empty, job=name,
    )  # fmt: skip
