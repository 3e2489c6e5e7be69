"""Where a segment's members come from: Siebel by `--where FIELD=VALUE…` (through the `MemberStore` port), or a
CSV member list from any system, whose header has a `Member Number` column, with an optional count file.

Each source yields `(reference, found)`: the Member Number (or row id) to name in the report, and the member,
`None` when Siebel does not know the number, or the `InvalidRecord` when Siebel's record is no valid member.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from sync_worker.core.errors import InvalidRecord, UnknownField
from sync_worker.core.member import MEMBER_NUMBER, Member
from sync_worker.core.ports import MemberStore
from sync_worker.core.segments import (
    CountMismatch,
    InvalidSegmentRequest,
    SegmentError,
    count_data_lines,
    parse_expected_count,
)

Found = tuple[str, Member | InvalidRecord | None]


class BadMemberList(SegmentError):
    """A member list that cannot be read as one: no `Member Number` column, not UTF-8, not CSV."""


def from_siebel(
    store: MemberStore, conditions: Sequence[tuple[str, str]], *, option: str = "--where"
) -> Iterator[Found]:
    """The members matching every condition; a field the store does not know is a usage error naming the
    condition (`option` is how the user wrote it: `--where`, or a job's `where`)."""
    try:
        for found in store.find_matching(conditions):
            reference = found.row_id if isinstance(found, InvalidRecord) else found.member_number
            yield reference, found
    except UnknownField as exc:
        named = [f"{field}={value}" for field, value in conditions if field == exc.field]
        raise InvalidSegmentRequest(f"{option} {named[0]!r}: {exc.message}" if named else exc.message) from None


def from_member_list(store: MemberStore, path: Path) -> Iterator[Found]:
    """Every data line's Member Number looked up in Siebel, in the list's order (blank lines skipped)."""
    with _open(path) as reading:
        rows = csv.DictReader(reading)
        if rows.fieldnames is None or MEMBER_NUMBER not in [name.strip() for name in rows.fieldnames]:
            raise BadMemberList(f"{path}: the header has no {MEMBER_NUMBER!r} column")
        column = next(name for name in rows.fieldnames if name.strip() == MEMBER_NUMBER)
        try:
            for row in rows:
                number = (row.get(column) or "").strip()
                if number:
                    yield number, store.get_member(number)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise BadMemberList(f"{path}: line {rows.line_num}: {exc}") from None


def check_count(path: Path, count_file: Path) -> int:
    """The member list must hold as many data lines as its count file says, or nothing is sent."""
    try:
        expected = parse_expected_count(count_file.read_text(encoding="utf-8"), source=str(count_file))
    except (OSError, UnicodeDecodeError) as exc:
        raise BadMemberList(f"cannot read the count file {count_file}: {exc}") from None
    with _open(path) as reading:
        try:
            actual = count_data_lines(csv.reader(reading))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise BadMemberList(f"{path}: {exc}") from None
    if actual != expected:
        raise CountMismatch(f"{path} holds {actual} data lines, its count file {count_file} says {expected}")
    return actual


def _open(path: Path) -> TextIO:
    """UTF-8, a byte-order mark tolerated (spreadsheets write one), newlines left to the csv module."""
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise BadMemberList(f"cannot read the member list {path}: {exc.strerror or exc}") from None
