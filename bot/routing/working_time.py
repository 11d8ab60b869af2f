"""Working time (工作时间): business hours on working days, in the policy's time zone.

A day is a working day by, in order of precedence:

1. an admin's override (``models.CalendarDay`` rows, passed in as ``{day: is_workday}``);
2. China's official calendar — public holidays and make-up working days (调休) — from the
   ``chinese_calendar`` package, when the policy enables it and the package knows the year;
3. otherwise Monday to Friday. A year the package does not cover is logged once per process
   (:func:`official_calendar_covers`), so an admin knows to enter its holidays by hand.

All arguments are aware datetimes in any zone; all results are aware UTC datetimes. Local
days and hours are computed in the calendar's zone (``zoneinfo``). Pure: no clock, no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from types import MappingProxyType
from zoneinfo import ZoneInfo

import chinese_calendar

from bot.routing.policy import WALL_UNITS, WORKING_TIME_UNITS, Duration, Policy, Unit

log = logging.getLogger(__name__)

ONE_DAY = timedelta(days=1)
ZERO = timedelta(0)

Span = tuple[datetime, datetime]


@cache
def official_calendar_covers(year: int) -> bool:
    """Whether ``chinese_calendar`` knows the holidays of ``year``; warns once per year if not."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        log.warning(
            "chinese_calendar has no holiday data for %d: counting Monday to Friday as "
            "working days; enter that year's holidays and make-up days as calendar overrides",
            year,
        )
        return False
    return True


class WorkCalendar:
    """Business hours on working days, with official holidays and admin overrides."""

    def __init__(
        self,
        timezone: ZoneInfo,
        business_hours: Sequence[tuple[time, time]],
        *,
        overrides: Mapping[date, bool] | None = None,
        official_holidays: bool = True,
    ) -> None:
        if not business_hours or any(closes <= opens for opens, closes in business_hours):
            raise ValueError("business hours need at least one span, each ending after it starts")
        self.tz = timezone
        self.business_hours = tuple(sorted(business_hours))
        self.overrides: Mapping[date, bool] = MappingProxyType(dict(overrides or {}))
        self.official_holidays = official_holidays
        self._spans_of = lru_cache(maxsize=4096)(self._compute_spans)

    @classmethod
    def for_policy(
        cls, policy: Policy, overrides: Mapping[date, bool] | None = None
    ) -> WorkCalendar:
        return cls(
            policy.tz,
            policy.business_hours,
            overrides=overrides,
            official_holidays=policy.official_holidays,
        )

    # --- days ----------------------------------------------------------------------------

    def is_workday(self, day: date) -> bool:
        """Override, else the official calendar (holidays, 调休), else Monday–Friday."""
        if day in self.overrides:
            return self.overrides[day]
        if self.official_holidays and official_calendar_covers(day.year):
            return bool(chinese_calendar.is_workday(day))
        return day.weekday() < 5

    def local_day(self, instant: datetime) -> date:
        return _aware(instant).astimezone(self.tz).date()

    def business_spans(self, day: date) -> tuple[Span, ...]:
        """The day's business hours as UTC spans; none on a day off."""
        return self._spans_of(day)

    def _compute_spans(self, day: date) -> tuple[Span, ...]:
        if not self.is_workday(day):
            return ()
        spans: list[Span] = []
        for opens, closes in self.business_hours:
            start = datetime.combine(day, opens, tzinfo=self.tz).astimezone(UTC)
            end = datetime.combine(day, closes, tzinfo=self.tz).astimezone(UTC)
            if end > start:  # a span swallowed by a daylight-saving jump is skipped
                spans.append((start, end))
        return tuple(spans)

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        day += ONE_DAY
        while not self.business_spans(day):
            day += ONE_DAY
        return day

    def end_of_business(self, day: date) -> datetime:
        """The close of business of ``day``, or of the next working day if ``day`` is off."""
        spans = self.business_spans(day)
        if not spans:
            spans = self.business_spans(self.next_working_day(day))
        return spans[-1][1]

    # --- instants ------------------------------------------------------------------------

    def is_business_time(self, instant: datetime) -> bool:
        instant = _aware(instant)
        return any(start <= instant < end for start, end in self._spans_from(instant, days=1))

    def next_business_start(self, instant: datetime) -> datetime:
        """``instant`` itself inside business hours, else the next opening time."""
        instant = _aware(instant)
        for start, end in self._spans_from(instant):
            if end > instant:
                return max(start, instant)
        raise AssertionError("unreachable: the span walk never ends")

    def add(self, start: datetime, duration: Duration) -> datetime:
        """``start`` plus ``duration``: wall time or working time, by the duration's unit."""
        start = _aware(start)
        if duration.unit in WALL_UNITS:
            return start + WALL_UNITS[duration.unit] * duration.amount
        if duration.unit in WORKING_TIME_UNITS:
            return self.add_working(start, WORKING_TIME_UNITS[duration.unit] * duration.amount)
        assert duration.unit is Unit.WORKING_DAYS
        return self._add_working_days(start, duration.amount)

    def add_working(self, start: datetime, amount: timedelta) -> datetime:
        """The instant when ``amount`` of working time has passed since ``start``.

        A deadline that uses up a span exactly lands on its closing time (17:30), not on the
        next opening. ``amount`` zero returns ``start`` unchanged.
        """
        start = _aware(start)
        if amount < ZERO:
            raise ValueError("working time cannot be negative")
        if amount == ZERO:
            return start
        remaining = amount
        for span_start, span_end in self._spans_from(start):
            if span_end <= start:
                continue
            begin = max(span_start, start)
            room = span_end - begin
            if remaining <= room:
                return begin + remaining
            remaining -= room
        raise AssertionError("unreachable: the span walk never ends")

    def working_time_between(self, first: datetime, second: datetime) -> timedelta:
        """Working time inside ``[first, second]``; zero when ``second`` is not later."""
        first, second = _aware(first), _aware(second)
        if second <= first:
            return ZERO
        total = ZERO
        day, last = self.local_day(first), self.local_day(second)
        while day <= last:
            for start, end in self.business_spans(day):
                overlap = min(end, second) - max(start, first)
                if overlap > ZERO:
                    total += overlap
            day += ONE_DAY
        return total

    def working_seconds_between(self, first: datetime, second: datetime) -> float:
        return self.working_time_between(first, second).total_seconds()

    # --- internals -----------------------------------------------------------------------

    def _add_working_days(self, start: datetime, days: int) -> datetime:
        day = self.local_day(start)
        spans = self.business_spans(day)
        if not spans or start >= spans[-1][1]:
            day = self.next_working_day(day)  # reported after hours or on a day off
        for _ in range(days):
            day = self.next_working_day(day)
        return self.end_of_business(day)

    def _spans_from(self, instant: datetime, days: int | None = None) -> Iterator[Span]:
        """Business spans from the local day of ``instant`` on (for ``days`` days, or ever)."""
        day = self.local_day(instant)
        count = 0
        while days is None or count < days:
            yield from self.business_spans(day)
            day += ONE_DAY
            count += 1


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("the working-time calendar needs aware datetimes")
    return instant.astimezone(UTC)
