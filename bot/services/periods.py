"""Calendar periods of the visit quotas (走访周期): month, quarter and year, in local time.

Pure functions. A period is named by its kind and its first local day; it ends (exclusive) on
the first day of the next one. Instants are aware datetimes; the time zone is the community's
(``Settings.tz``, Asia/Shanghai by default), so a visit at 23:30 on 31 March in Shanghai counts
for March and Q1 even though it is already 15:30 UTC.

Working days are Monday to Friday unless an ``is_workday`` callable is given (the routing
module's calendar, with official holidays and make-up days, is passed in by the callers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.settings import Settings

IsWorkday = Callable[[date], bool]

DEFAULT_TZ: tzinfo = ZoneInfo(str(Settings.model_fields["timezone"].default))
"""The default community time zone (``Settings.timezone``'s default); pass ``settings.tz``."""


class PeriodKind(StrEnum):
    MONTH = "month"  # 自然月
    QUARTER = "quarter"  # 季度
    YEAR = "year"  # 年度


@dataclass(frozen=True, order=True)
class Period:
    """One calendar period: ``start`` is its first local day, ``end`` the day after its last."""

    kind: PeriodKind
    start: date

    @property
    def end(self) -> date:
        return period_end(self.kind, self.start)

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end

    def previous(self) -> Period:
        return Period(self.kind, period_start(self.kind, self.start - timedelta(days=1)))

    def next(self) -> Period:
        return Period(self.kind, self.end)

    def utc_bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """The instants (UTC) where the period begins and ends in the time zone ``tz``."""
        return local_midnight(self.start, tz), local_midnight(self.end, tz)


def local_day(instant: datetime, tz: tzinfo) -> date:
    """The calendar day an aware instant falls on in ``tz``."""
    if instant.tzinfo is None:
        raise ValueError("an aware datetime is required")
    return instant.astimezone(tz).date()


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The instant (UTC) a local day begins."""
    return datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(UTC)


def period_start(kind: PeriodKind, day: date) -> date:
    """The first day of the period of ``kind`` that contains ``day``."""
    if kind is PeriodKind.MONTH:
        return day.replace(day=1)
    if kind is PeriodKind.QUARTER:
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def period_end(kind: PeriodKind, start: date) -> date:
    """The first day after the period of ``kind`` that begins on ``start`` (exclusive end)."""
    months = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}[kind]
    index = start.year * 12 + (start.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def period_of(kind: PeriodKind, instant: datetime, tz: tzinfo) -> Period:
    """The period of ``kind`` that contains an instant, in local time."""
    return Period(kind, period_start(kind, local_day(instant, tz)))


def periods_of(instant: datetime, tz: tzinfo) -> dict[PeriodKind, Period]:
    """The month, quarter and year that contain an instant, in local time."""
    return {kind: period_of(kind, instant, tz) for kind in PeriodKind}


def is_weekday(day: date) -> bool:
    """The plain calendar: Monday to Friday are working days."""
    return day.weekday() < 5


def working_days_left(period: Period, today: date, is_workday: IsWorkday | None = None) -> int:
    """Working days from ``today`` (included) to the end of ``period``.

    Days before the period starts are not counted; after the period it is 0.
    """
    check = is_workday or is_weekday
    day = max(today, period.start)
    count = 0
    while day < period.end:
        if check(day):
            count += 1
        day += timedelta(days=1)
    return count


def working_day_before_end(
    period: Period, working_days: int, is_workday: IsWorkday | None = None
) -> date | None:
    """The working day from which exactly ``working_days`` working days remain in ``period``.

    ``working_days=5`` gives the day of the "five working days left" reminder; ``None`` if the
    period has fewer working days than that.
    """
    if working_days < 1:
        raise ValueError("working_days must be at least 1")
    check = is_workday or is_weekday
    day = period.end - timedelta(days=1)
    seen = 0
    while day >= period.start:
        if check(day):
            seen += 1
            if seen == working_days:
                return day
        day -= timedelta(days=1)
    return None
