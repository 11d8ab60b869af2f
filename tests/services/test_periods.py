"""Quota periods in local time, and working days left (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.services.periods import (
    DEFAULT_TZ,
    Period,
    PeriodKind,
    local_day,
    period_end,
    period_of,
    period_start,
    periods_of,
    working_day_before_end,
    working_days_left,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
MARCH = Period(PeriodKind.MONTH, date(2026, 3, 1))


def shanghai(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def test_the_default_zone_is_shanghai() -> None:
    assert local_day(datetime(2026, 3, 31, 16, 10, tzinfo=UTC), DEFAULT_TZ) == date(2026, 4, 1)


def test_late_on_the_last_of_march_is_march_and_the_first_quarter() -> None:
    late = shanghai(2026, 3, 31, 23, 30)  # 15:30 UTC
    assert periods_of(late, SHANGHAI) == {
        PeriodKind.MONTH: Period(PeriodKind.MONTH, date(2026, 3, 1)),
        PeriodKind.QUARTER: Period(PeriodKind.QUARTER, date(2026, 1, 1)),
        PeriodKind.YEAR: Period(PeriodKind.YEAR, date(2026, 1, 1)),
    }


def test_just_after_midnight_on_the_first_of_april_is_april_and_the_second_quarter() -> None:
    early = shanghai(2026, 4, 1, 0, 10)  # still 31 March in UTC
    assert early.astimezone(UTC).day == 31
    assert period_of(PeriodKind.MONTH, early, SHANGHAI).start == date(2026, 4, 1)
    assert period_of(PeriodKind.QUARTER, early, SHANGHAI).start == date(2026, 4, 1)
    assert period_of(PeriodKind.YEAR, early, SHANGHAI).start == date(2026, 1, 1)


def test_ends_and_neighbours_wrap_the_year() -> None:
    december = Period(PeriodKind.MONTH, date(2025, 12, 1))
    assert december.end == date(2026, 1, 1)
    assert december.next() == Period(PeriodKind.MONTH, date(2026, 1, 1))
    assert Period(PeriodKind.QUARTER, date(2026, 1, 1)).previous() == Period(
        PeriodKind.QUARTER, date(2025, 10, 1)
    )
    assert Period(PeriodKind.YEAR, date(2026, 1, 1)).end == date(2027, 1, 1)
    assert period_end(PeriodKind.QUARTER, date(2026, 10, 1)) == date(2027, 1, 1)


def test_utc_bounds_are_local_midnights() -> None:
    begins, ends = MARCH.utc_bounds(SHANGHAI)
    assert begins == datetime(2026, 2, 28, 16, 0, tzinfo=UTC)
    assert ends == datetime(2026, 3, 31, 16, 0, tzinfo=UTC)


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError):
        local_day(datetime(2026, 3, 12, 9, 0), SHANGHAI)


def test_working_days_left_in_march_from_thursday_the_twelfth() -> None:
    # 12, 13 | 16–20 | 23–27 | 30, 31
    assert working_days_left(MARCH, date(2026, 3, 12)) == 14
    assert working_days_left(MARCH, date(2026, 3, 14)) == 12  # a Saturday
    assert working_days_left(MARCH, date(2026, 4, 1)) == 0
    assert working_days_left(MARCH, date(2026, 2, 1)) == 22  # the whole month


def test_a_calendar_can_be_passed_in() -> None:
    holidays = {date(2026, 3, 30), date(2026, 3, 31)}
    make_up = {date(2026, 3, 28)}  # a working Saturday (调休)

    def is_workday(day: date) -> bool:
        return day in make_up or (day.weekday() < 5 and day not in holidays)

    assert working_days_left(MARCH, date(2026, 3, 12), is_workday) == 13
    assert working_day_before_end(MARCH, 1, is_workday) == date(2026, 3, 28)


def test_the_fifth_working_day_before_the_end() -> None:
    assert working_day_before_end(MARCH, 5) == date(2026, 3, 25)
    assert working_days_left(MARCH, date(2026, 3, 25)) == 5
    assert working_day_before_end(MARCH, 40) is None
    with pytest.raises(ValueError):
        working_day_before_end(MARCH, 0)


days = st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31))
kinds = st.sampled_from(list(PeriodKind))


@given(days, kinds)
def test_every_day_lies_in_exactly_one_period_of_each_kind(day: date, kind: PeriodKind) -> None:
    period = Period(kind, period_start(kind, day))
    assert period.contains(day)
    assert period.start.day == 1
    assert period_start(kind, period.end) == period.end
    assert period.next().previous() == period
    assert not period.next().contains(day)


@given(st.datetimes(timezones=st.timezone_keys().map(ZoneInfo)), kinds)
def test_period_of_an_instant_matches_its_local_day(instant: datetime, kind: PeriodKind) -> None:
    try:
        day = instant.astimezone(SHANGHAI).date()
    except OverflowError:
        return
    assert period_of(kind, instant, SHANGHAI).contains(day)


@given(days, kinds)
def test_working_days_left_never_exceed_the_calendar_days(day: date, kind: PeriodKind) -> None:
    period = Period(kind, period_start(kind, day))
    left = working_days_left(period, day)
    assert 0 <= left <= (period.end - day).days
    tomorrow = day + timedelta(days=1)
    assert working_days_left(period, tomorrow) == left - (1 if day.weekday() < 5 else 0)
