"""Working time: business hours, weekends, China's holidays and make-up days, overrides."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.routing.policy import Duration, Unit, load_default_policy
from bot.routing.working_time import WorkCalendar, official_calendar_covers
from tests.routing.support import SHANGHAI, local

HOURS = ((time(8, 30), time(12, 0)), (time(14, 0), time(17, 30)))


def calendar(overrides: dict[date, bool] | None = None, official: bool = True) -> WorkCalendar:
    return WorkCalendar(SHANGHAI, HOURS, overrides=overrides, official_holidays=official)


CAL = calendar()
SAME_DAY = Duration(0, Unit.WORKING_DAYS)


@pytest.fixture(autouse=True)
def fresh_coverage_cache() -> Iterator[None]:
    official_calendar_covers.cache_clear()
    yield
    official_calendar_covers.cache_clear()


def test_the_calendar_follows_the_policy() -> None:
    cal = WorkCalendar.for_policy(load_default_policy())
    assert cal.business_hours == HOURS
    assert cal.tz == SHANGHAI
    assert cal.official_holidays


def test_results_are_utc() -> None:
    result = CAL.add(local(2026, 3, 12, 9), Duration(3, Unit.WORKING_DAYS))
    assert result.tzinfo is UTC
    assert result == local(2026, 3, 17, 17, 30)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        CAL.add(datetime(2026, 3, 12, 9), SAME_DAY)


# --- same working day: 17:29 against 17:31 ----------------------------------------------------


def test_same_working_day_before_the_close_is_today() -> None:
    assert CAL.add(local(2026, 3, 12, 17, 29), SAME_DAY) == local(2026, 3, 12, 17, 30)


def test_same_working_day_after_the_close_is_the_next_working_day() -> None:
    assert CAL.add(local(2026, 3, 12, 17, 31), SAME_DAY) == local(2026, 3, 13, 17, 30)


def test_same_working_day_on_friday_evening_is_monday() -> None:
    assert CAL.add(local(2026, 3, 13, 17, 31), SAME_DAY) == local(2026, 3, 16, 17, 30)


def test_same_working_day_early_in_the_morning_is_today() -> None:
    assert CAL.add(local(2026, 3, 12, 6, 0), SAME_DAY) == local(2026, 3, 12, 17, 30)


def test_same_working_day_at_lunch_is_today() -> None:
    assert CAL.add(local(2026, 3, 12, 12, 30), SAME_DAY) == local(2026, 3, 12, 17, 30)


# --- working days skip weekends and holidays ------------------------------------------------


def test_working_days_skip_the_weekend() -> None:
    # Thursday: Friday, Monday, Tuesday
    assert CAL.add(local(2026, 3, 12, 10), Duration(3, Unit.WORKING_DAYS)) == local(
        2026, 3, 17, 17, 30
    )


def test_working_days_reported_on_saturday_count_from_monday() -> None:
    assert CAL.add(local(2026, 3, 14, 10), Duration(1, Unit.WORKING_DAYS)) == local(
        2026, 3, 17, 17, 30
    )


def test_national_day_is_skipped_and_the_make_up_saturday_counts() -> None:
    # 2026-09-30 is a Wednesday; 1-7 October are holidays; Saturday 10 October is a 调休 workday
    assert not CAL.is_workday(date(2026, 10, 1))
    assert not CAL.is_workday(date(2026, 10, 7))
    assert CAL.is_workday(date(2026, 10, 10))
    start = local(2026, 9, 30, 10)
    assert CAL.add(start, Duration(1, Unit.WORKING_DAYS)) == local(2026, 10, 8, 17, 30)
    assert CAL.add(start, Duration(3, Unit.WORKING_DAYS)) == local(2026, 10, 10, 17, 30)


def test_spring_festival_and_its_make_up_saturday() -> None:
    # Friday 13 February 2026, 16:00: 1.5 h left that day; Saturday 14 February is a workday
    assert CAL.is_workday(date(2026, 2, 14))
    assert not CAL.is_workday(date(2026, 2, 16))
    start = local(2026, 2, 13, 16)
    assert CAL.add(start, Duration(2, Unit.WORKING_HOURS)) == local(2026, 2, 14, 9, 0)
    # after the 14th the holiday runs 15-23 February
    assert CAL.add(local(2026, 2, 14, 18), SAME_DAY) == local(2026, 2, 24, 17, 30)


def test_end_of_business_on_a_day_off_is_the_next_working_days() -> None:
    assert CAL.end_of_business(date(2026, 3, 12)) == local(2026, 3, 12, 17, 30)
    assert CAL.end_of_business(date(2026, 3, 14)) == local(2026, 3, 16, 17, 30)
    assert CAL.end_of_business(date(2026, 10, 1)) == local(2026, 10, 8, 17, 30)


# --- working hours: lunch, evenings ---------------------------------------------------------


def test_lunch_is_not_business_time() -> None:
    assert not CAL.is_business_time(local(2026, 3, 12, 12, 30))
    assert CAL.is_business_time(local(2026, 3, 12, 11, 59))
    assert not CAL.is_business_time(local(2026, 3, 12, 17, 30))
    assert not CAL.is_business_time(local(2026, 3, 14, 10))
    assert CAL.next_business_start(local(2026, 3, 12, 12, 30)) == local(2026, 3, 12, 14, 0)


def test_working_hours_from_lunch_start_after_lunch() -> None:
    assert CAL.add(local(2026, 3, 12, 12, 30), Duration(2, Unit.WORKING_HOURS)) == local(
        2026, 3, 12, 16, 0
    )


def test_working_hours_carry_over_the_weekend() -> None:
    # Friday 16:00 + 2 h: 1.5 h on Friday, 0.5 h on Monday
    assert CAL.add(local(2026, 3, 13, 16), Duration(2, Unit.WORKING_HOURS)) == local(
        2026, 3, 16, 9, 0
    )


def test_a_span_used_up_exactly_ends_at_its_close() -> None:
    assert CAL.add(local(2026, 3, 12, 16), Duration(90, Unit.WORKING_MINUTES)) == local(
        2026, 3, 12, 17, 30
    )


def test_next_business_start() -> None:
    inside = local(2026, 3, 12, 9, 15)
    assert CAL.next_business_start(inside) == inside
    assert CAL.next_business_start(local(2026, 3, 13, 18)) == local(2026, 3, 16, 8, 30)
    assert CAL.next_business_start(local(2026, 9, 30, 17, 45)) == local(2026, 10, 8, 8, 30)


def test_working_time_between_spans_lunch_weekends_and_holidays() -> None:
    assert CAL.working_time_between(local(2026, 3, 12, 11), local(2026, 3, 12, 15)) == timedelta(
        hours=2
    )
    assert CAL.working_seconds_between(local(2026, 3, 13, 17), local(2026, 3, 16, 9)) == 3600
    assert CAL.working_time_between(local(2026, 9, 30, 17), local(2026, 10, 8, 9)) == timedelta(
        hours=1
    )
    assert CAL.working_time_between(local(2026, 3, 16), local(2026, 3, 12)) == timedelta(0)


def test_wall_units_ignore_the_calendar() -> None:
    saturday_night = local(2026, 3, 14, 3)
    assert CAL.add(saturday_night, Duration(10, Unit.MINUTES)) == saturday_night + timedelta(
        minutes=10
    )
    assert CAL.add(saturday_night, Duration(2, Unit.HOURS)) == local(2026, 3, 14, 5)
    assert CAL.add(saturday_night, Duration(30, Unit.SECONDS)) == saturday_night + timedelta(
        seconds=30
    )
    assert CAL.add(saturday_night, Duration(1, Unit.DAYS)) == local(2026, 3, 15, 3)


def test_the_zone_decides_the_local_day() -> None:
    utc_calendar = WorkCalendar(ZoneInfo("UTC"), HOURS)
    # 2026-03-12 20:00 UTC is already Friday 04:00 in Shanghai
    instant = datetime(2026, 3, 12, 20, tzinfo=UTC)
    assert utc_calendar.add(instant, SAME_DAY) == datetime(2026, 3, 13, 17, 30, tzinfo=UTC)
    assert CAL.add(instant, SAME_DAY) == local(2026, 3, 13, 17, 30)


# --- years without data, overrides ----------------------------------------------------------


def test_a_year_without_official_data_falls_back_to_weekends_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.routing.working_time"):
        assert CAL.is_workday(date(2027, 10, 1))  # a Friday; the package stops at 2026
        assert not CAL.is_workday(date(2027, 10, 2))
        CAL.add(datetime(2027, 3, 5, 1, tzinfo=UTC), Duration(10, Unit.WORKING_DAYS))
    warnings = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert not official_calendar_covers(2027)
    assert official_calendar_covers(2026)


def test_each_uncovered_year_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.routing.working_time"):
        CAL.is_workday(date(2003, 5, 1))
        CAL.is_workday(date(2030, 5, 1))
        CAL.is_workday(date(2030, 5, 2))
    years = sorted(
        year for year in (2003, 2030) for r in caplog.records if str(year) in r.msg % r.args
    )
    assert years == [2003, 2030]


def test_admin_overrides_win_over_the_official_calendar() -> None:
    cal = calendar({date(2026, 3, 13): False, date(2026, 10, 3): True})
    assert not cal.is_workday(date(2026, 3, 13))
    assert cal.is_workday(date(2026, 10, 3))
    # Thursday evening: Friday is now off, so the same-working-day limit is Monday
    assert cal.add(local(2026, 3, 12, 17, 31), SAME_DAY) == local(2026, 3, 16, 17, 30)
    assert cal.add(local(2026, 9, 30, 10), Duration(1, Unit.WORKING_DAYS)) == local(
        2026, 10, 3, 17, 30
    )


def test_admin_overrides_win_over_the_fallback(caplog: pytest.LogCaptureFixture) -> None:
    cal = calendar({date(2027, 10, 1): False, date(2027, 10, 9): True})
    assert not cal.is_workday(date(2027, 10, 1))
    assert cal.is_workday(date(2027, 10, 9))  # a Saturday


def test_without_official_holidays_only_weekends_are_off() -> None:
    cal = calendar(official=False)
    assert cal.is_workday(date(2026, 10, 1))
    assert not cal.is_workday(date(2026, 10, 10))


def test_a_calendar_needs_business_hours() -> None:
    with pytest.raises(ValueError):
        WorkCalendar(SHANGHAI, ())
    with pytest.raises(ValueError):
        WorkCalendar(SHANGHAI, ((time(12), time(9)),))


# --- properties -----------------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2026, 11, 30), timezones=st.just(UTC)
)
amounts = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=200))
durations = st.sampled_from(list(Unit)).flatmap(
    lambda unit: st.builds(
        Duration,
        st.integers(min_value=0 if unit is Unit.WORKING_DAYS else 1, max_value=40),
        st.just(unit),
    )
)


@given(instants, amounts)
def test_adding_working_time_then_measuring_it_gives_it_back(
    start: datetime, amount: timedelta
) -> None:
    end = CAL.add_working(start, amount)
    assert end >= start
    assert CAL.working_time_between(start, end) == amount


@given(instants)
def test_next_business_start_is_business_time_and_not_earlier(start: datetime) -> None:
    opening = CAL.next_business_start(start)
    assert opening >= start
    assert CAL.is_business_time(opening)
    assert CAL.working_time_between(start, opening) == timedelta(0)


@given(instants, durations)
def test_every_duration_ends_after_its_start(start: datetime, duration: Duration) -> None:
    end = CAL.add(start, duration)
    assert end > start
    assert end.tzinfo is UTC


@given(instants, instants, instants)
def test_working_time_adds_up(first: datetime, second: datetime, third: datetime) -> None:
    a, b, c = sorted((first, second, third))
    assert CAL.working_time_between(a, c) == CAL.working_time_between(
        a, b
    ) + CAL.working_time_between(b, c)
