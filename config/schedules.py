"""When a job runs: `on-demand`, a one-time ISO time, or a 5-field cron expression (croniter), all in UTC.

Connect's rule is kept: a monthly run on day 29, 30 or 31 is refused (months without that day would skip it
silently); `L` in the day-of-month field means the last day of every month. A schedule is a value of the settings,
like a duration: parsed and checked once at start, then asked for its run times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from croniter import CroniterError, croniter
from pydantic import PlainSerializer, PlainValidator

ON_DEMAND = "on-demand"
_SHORT_MONTH_DAYS = {29, 30, 31}


@dataclass(frozen=True)
class Schedule:
    """`text` as written; `cron` or `once` set, or neither for an on-demand job."""

    text: str
    cron: str | None = None
    once: datetime | None = None

    @property
    def on_demand(self) -> bool:
        return self.cron is None and self.once is None

    def next_after(self, moment: datetime) -> datetime | None:
        """The first run time strictly after `moment`; None when there is none (on demand, a one-time run past)."""
        if self.once is not None:
            return self.once if self.once > moment else None
        if self.cron is None:
            return None
        return croniter(self.cron, _minute(moment)).get_next(datetime)

    def latest_until(self, moment: datetime) -> datetime | None:
        """The last run time at or before `moment`, if any: of several missed ones, the one to run."""
        if self.once is not None:
            return self.once if self.once <= moment else None
        if self.cron is None:
            return None
        minute = _minute(moment)
        if croniter.match(self.cron, minute):
            return minute
        return croniter(self.cron, minute).get_prev(datetime)

    def __str__(self) -> str:
        return self.text


def parse_schedule(value: Any) -> Schedule:
    """`on-demand`, `2026-12-24T06:00:00Z` or `0 2 * * *`; a ValueError says what is wrong."""
    if isinstance(value, Schedule):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"say {ON_DEMAND!r}, a one-time ISO time or a 5-field cron expression")
    text = " ".join(value.split())
    if text == ON_DEMAND:
        return Schedule(text)
    if text[:1].isdigit() and ("T" in text or text.count("-") == 2) and " " not in text:
        return Schedule(text, once=_instant(text))
    return Schedule(text, cron=_cron(text))


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO time like 2026-12-24T06:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _cron(text: str) -> str:
    fields = text.split(" ")
    if len(fields) != 5:
        raise ValueError(
            f"{text!r} is not a 5-field cron expression (minute hour day-of-month month day-of-week), "
            f"{ON_DEMAND!r} or a one-time ISO time"
        )
    try:
        expanded = croniter(text).expanded
    except (CroniterError, ValueError) as exc:
        raise ValueError(f"{text!r} is not a valid cron expression: {exc}") from None
    days = {day for day in expanded[2] if isinstance(day, int)}
    short = sorted(days & _SHORT_MONTH_DAYS)
    if short and "*" not in expanded[2]:
        raise ValueError(
            f"{text!r} runs on day {short[0]} of the month, which some months lack: refused, as Connect does "
            "(use L for the last day of the month)"
        )
    return text


def _minute(moment: datetime) -> datetime:
    """Cron counts whole minutes, in UTC."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


ScheduleText = Annotated[Schedule, PlainValidator(parse_schedule), PlainSerializer(str, return_type=str)]
