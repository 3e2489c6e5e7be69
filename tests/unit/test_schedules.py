"""Schedules: on demand, one time, or 5-field cron in UTC; Connect's refusal of days 29-31; `L` the last day."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from config.schedules import parse_schedule


def at(day: int, hour: int = 0, minute: int = 0, *, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def test_a_daily_cron_runs_at_its_minute_in_utc() -> None:
    daily = parse_schedule("0 2 * * *")
    assert daily.next_after(at(10, 1, 59)) == at(10, 2)
    assert daily.next_after(at(10, 2)) == at(11, 2)


def test_l_is_the_last_day_of_every_month() -> None:
    last = parse_schedule("0 4 L * *")
    times = [last.next_after(at(1))]
    for _ in range(3):
        times.append(last.next_after(times[-1]))  # type: ignore[arg-type]
    assert times == [at(31, 4), at(28, 4, month=2), at(31, 4, month=3), at(30, 4, month=4)]


@pytest.mark.parametrize("expression", ["0 2 31 * *", "0 2 29 * *", "0 2 28-30 * *", "0 2 1,30 * *", "0 2 */15 * *"])
def test_a_monthly_run_on_day_29_to_31_is_refused_pointing_to_l(expression: str) -> None:
    with pytest.raises(ValueError, match=r"some months lack: refused, as Connect does \(use L"):
        parse_schedule(expression)


@pytest.mark.parametrize("expression", ["@daily", "0 0 1 * * 5", "0 2 * *"])
def test_a_cron_expression_has_five_fields(expression: str) -> None:
    with pytest.raises(ValueError, match="is not a 5-field cron expression"):
        parse_schedule(expression)


def test_of_several_missed_times_the_latest_is_the_one_to_run() -> None:
    hourly = parse_schedule("15 * * * *")
    assert hourly.latest_until(at(10, 9, 14)) == at(10, 8, 15)
    assert hourly.latest_until(at(10, 9, 15)) == at(10, 9, 15)


def test_a_one_time_schedule_has_one_time_and_on_demand_none() -> None:
    once = parse_schedule("2026-01-10T09:30:00Z")
    assert (once.next_after(at(1)), once.next_after(at(10, 9, 30))) == (at(10, 9, 30), None)
    assert once.latest_until(at(10, 9, 29)) is None
    on_demand = parse_schedule("on-demand")
    assert on_demand.on_demand
    assert on_demand.next_after(at(1)) is None
