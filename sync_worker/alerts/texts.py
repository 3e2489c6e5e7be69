"""Alert texts: what the Siebel and integration admins need to act. Member Numbers, statuses and reasons, counts,
and the exact `ct-sync resubmit` command; never a member's personal data.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sync_worker.core.ports import Alert

_LISTED = 50  # members listed by number in one email; the rest are counted


@dataclass(frozen=True)
class MemberFailure:
    member_number: str
    status: str
    reason: str
    at: datetime | None = None  # when it was learnt: a later state in the ledger supersedes it


def resubmit_command(member_numbers: Sequence[str]) -> str:
    return shlex.join(["ct-sync", "resubmit", *(part for number in member_numbers for part in ("--member", number))])


def failure_digest(
    failures: Sequence[MemberFailure], *, recovered: int = 0, as_of: datetime | None = None, unread: str | None = None
) -> Alert:
    """The members still not synced, each with its status as it stands (`as_of`, read from the ledger), and how
    many of those that failed meanwhile have synced since; `unread` says why the ledger could not be read (the
    statuses are then the failures as this process saw them)."""
    counts = Counter(failure.status for failure in failures)
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    lines = [f"ct-sync could not sync {len(failures)} member(s): {summary}."]
    if unread is not None:
        lines.append(f"Each as last seen by this process (their current status could not be read: {unread}).")
    elif as_of is not None:
        lines.append(f"Each with its status as it stands at {as_of:%Y-%m-%d %H:%M:%S} UTC.")
    if recovered:
        lines.append(f"{recovered} member(s) recovered since (now Synced).")
    lines.append("")
    for failure in failures[:_LISTED]:
        lines.append(f"  {failure.member_number}  {failure.status}: {failure.reason}")
    if len(failures) > _LISTED:
        lines.append(f"  … and {len(failures) - _LISTED} more (ct-sync status lists them)")
    data_errors = [f.member_number for f in failures if f.status == "Data Error"]
    others = [f.member_number for f in failures if f.status != "Data Error"]
    lines.append("")
    if data_errors:
        lines.append("Data Error: correct the member in Siebel; saving the change syncs it again.")
    if others:
        lines += ["To try the others again once the cause is fixed:", f"  {resubmit_command(others[:_LISTED])}"]
    return Alert(subject=f"[ct-sync] {len(failures)} member(s) not synced: {summary}", body="\n".join(lines) + "\n")
