"""The rules of a CrowdTwist segment file (design.md, "Segment export"; crowdtwist-api.md, "Bulk load and segments
over SFTP"), as pure functions: the NAME rule, the file name and its growing suffix, who is left out and why, how a
row is written (and which values are refused rather than enclosed), the count-file and ready-file rules, and why a
segment with no member is not sent (unless an empty file is asked for).

CrowdTwist's three pages on segment files disagree on the identifier header; one identifier column satisfies all
of them: `CTUserID` (the CrowdTwist id, legacy header every page accepts) or `third_party_id` (the Member Number).
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Literal

from sync_worker.core.errors import PermanentError
from sync_worker.core.member import ACTIVE, INDIVIDUAL, Member

Identifier = Literal["ct_user_id", "third_party_id"]
ReadyFile = Literal["none", "empty", "count"]

HEADERS: dict[Identifier, str] = {"ct_user_id": "CTUserID", "third_party_id": "third_party_id"}
LAST_SUFFIX = 2359  # the suffix is an HHMM time: past 23:59 a date has no number left
_NAME = re.compile(r"[A-Za-z0-9_-]{1,50}")
# CrowdTwist reads the file without enclosure: any of these inside a value would shift or split the row.
_NEEDS_ENCLOSING = re.compile(r'[,"\r\n]')


class SegmentError(PermanentError):
    """A segment run that cannot go on; `exit_code` is the design.md exit code the CLI ends with."""

    exit_code = 1


class InvalidSegmentRequest(SegmentError):
    """A bad NAME, `--where` or option: a usage error, nothing written."""

    exit_code = 2


class CountMismatch(SegmentError):
    """The member list does not hold the number of lines its count file announces; nothing sent."""


class SegmentTooLarge(SegmentError):
    """The file would exceed the size CrowdTwist accepts; nothing sent."""


class SuffixExhausted(SegmentError):
    """Every suffix of the day up to 2359 is taken for this NAME."""


class EmptySegment(SegmentError):
    """No member belongs in the file: a file of the header alone would empty the segment in CrowdTwist, so it is
    not sent unless asked for (`--allow-empty`, a job's `allow_empty = true`)."""


class LeftOut(enum.StrEnum):
    """Why a member is not written to the file. Leaving members out is not a failure of the run."""

    PRIVACY_DELETED = "deleted on a privacy request"
    OTHER_PROGRAM = "other program"
    NOT_INDIVIDUAL = "not an Individual member"
    NOT_ACTIVE = "not Active"
    NEVER_SYNCED = "never synced (CrowdTwist does not know them)"
    UNKNOWN = "unknown to Siebel"
    INVALID_RECORD = "Siebel record is not a valid member"
    NEEDS_ENCLOSING = "identifier would need enclosing (comma, quote or line break)"
    DUPLICATE = "duplicate of an earlier row"


def check_segment_name(name: str) -> str:
    """NAME: 1–50 of A–Z a–z 0–9 _ - (it becomes a file name on CrowdTwist's server: no path, no dot)."""
    if not _NAME.fullmatch(name):
        raise InvalidSegmentRequest(f"segment NAME {name!r} must be 1-50 of A-Z a-z 0-9 _ -")
    return name


def parse_where(conditions: Sequence[str]) -> list[tuple[str, str]]:
    """`["Tier=Gold", "Status=Active"]` → `[("Tier", "Gold"), ("Status", "Active")]`; the value may hold `=`."""
    parsed = []
    for condition in conditions:
        field, separator, value = condition.partition("=")
        if not separator or not field.strip():
            raise InvalidSegmentRequest(f"--where {condition!r} must be FIELD=VALUE (a Siebel field name)")
        if any(character in field for character in '[]"'):
            raise InvalidSegmentRequest(f'--where {condition!r}: a field name cannot hold [ ] or "')
        parsed.append((field.strip(), value))
    if not parsed:
        raise InvalidSegmentRequest("say which members: --where FIELD=VALUE or --from-file PATH")
    return parsed


def empty_segment_text(name: str, *, members: str, left_out: Counter[LeftOut], allow: str) -> str:
    """Why segment `name` is not sent: no member found (`members` says which were asked for, "in Siebel with
    Tier=Gold" or "listed in lapsed.csv"), or every one found left out, counted by reason; `allow` names how to send
    it anyway."""
    found = left_out.total()
    reasons = ", ".join(f"{count} {reason}" for reason, count in left_out.most_common())
    if found == 0:
        why = f"no member {members}"
    elif found == 1:
        why = f"the one member {members} does not belong in it ({reasons})"
    else:
        why = f"none of the {found} members {members} belongs in it (left out: {reasons})"
    return f"segment {name} is empty: {why}; nothing sent ({allow} sends a file with the header only)"


def left_out_reason(member: Member, *, program_id: str | None, privacy_request: str | None = None) -> LeftOut | None:
    """Why this member is not for the file, or None when CrowdTwist knows them and they belong in it."""
    if privacy_request is not None:
        return LeftOut.PRIVACY_DELETED
    if program_id is not None and member.program_id != program_id:
        return LeftOut.OTHER_PROGRAM
    if member.member_type != INDIVIDUAL:
        return LeftOut.NOT_INDIVIDUAL
    if member.status != ACTIVE:
        return LeftOut.NOT_ACTIVE
    # Whichever identifier the file carries, a member CrowdTwist has never seen would be a row it cannot match.
    if member.ct_user_id is None:
        return LeftOut.NEVER_SYNCED
    return None


def identifier_value(member: Member, identifier: Identifier) -> str:
    return str(member.ct_user_id) if identifier == "ct_user_id" else member.member_number


def needs_enclosing(value: str) -> bool:
    return _NEEDS_ENCLOSING.search(value) is not None


def header_line(identifier: Identifier) -> str:
    return HEADERS[identifier] + "\n"


def file_name(name: str, day: date, suffix: int) -> str:
    """`Gold_20261122_1005.csv`: NAME, the UTC date, the 4-digit suffix."""
    return f"{name}_{day:%Y%m%d}_{suffix:04d}.csv"


def ready_name(data_file_name: str) -> str:
    return data_file_name.removesuffix(".csv") + ".ready"


def next_suffix(at: datetime, *, highest_delivered: int | None) -> int:
    """The run's UTC HHMM, but always strictly above the highest suffix already delivered for the NAME that day
    (CrowdTwist makes a new list per new suffix and ignores one that does not grow)."""
    suffix = at.hour * 100 + at.minute
    if highest_delivered is not None:
        suffix = max(suffix, highest_delivered + 1)
    if suffix > LAST_SUFFIX:
        raise SuffixExhausted(
            f"no suffix left on {at:%Y-%m-%d} for this segment: {highest_delivered:04d} was delivered already"
        )
    return suffix


def ready_content(ready: ReadyFile, *, rows: int) -> str | None:
    """The ready file's text (Connect's option): none, empty, or the number of data rows."""
    if ready == "none":
        return None
    return "" if ready == "empty" else f"{rows}\n"


def count_data_lines(records: Iterable[Sequence[str]]) -> int:
    """Data lines of a member list: the header and blank lines do not count; duplicates and unknown numbers do."""
    lines = -1  # the header
    for record in records:
        if lines < 0 or any(cell.strip() for cell in record):
            lines += 1
    return max(lines, 0)


def parse_expected_count(text: str, *, source: str) -> int:
    value = text.strip()
    if not value.isdigit():
        raise CountMismatch(f"{source} must hold one whole number (the member list's data lines)")
    return int(value)
