"""Reading what people type about a meeting's time, title and place, and a series' dates.

Meeting times are typed in local time in many shapes (``2026-03-20 14:30``, ``3月20日 下午2点半``,
``明天 15:00``); :func:`parse_meeting_time` reads them all and refuses the rest with a clear,
translated answer. :func:`occurrences` lays a series out at the same local wall time.
"""

from __future__ import annotations

import re
import unicodedata
from calendar import monthrange
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum

from bot.errors import InvalidInput
from bot.i18n import N_

MAX_AHEAD_YEARS = 1
RECENT_TYPO = timedelta(days=31)  # "3月11日" typed on 3月12日 is a slip, not next year's date
MAX_TITLE = 200
MAX_PLACE = 200
MAX_TIME_INPUT = 60


class Recurrence(StrEnum):
    WEEKLY = "weekly"  # 每周例会
    MONTHLY = "monthly"  # 每月例会
    QUARTERLY = "quarterly"  # 季度例会 (DOMAIN.md §6)


class TimeNotUnderstood(InvalidInput):
    message = N_(
        "Sorry, I could not read that time. Please write it like 2026-03-20 14:30, "
        "3月20日 14:30, 03-20 14:30 or 明天 下午3点."
    )


_DATE = (
    r"(?:(?P<rel>今天|今日|明天|明日|后天|後天|today|tomorrow)"
    r"|(?P<y>[0-9]{4})[-/.](?P<m>[0-9]{1,2})[-/.](?P<d>[0-9]{1,2})"
    r"|(?:(?P<y2>[0-9]{4})年)?(?P<m2>[0-9]{1,2})月(?P<d2>[0-9]{1,2})[日号號]?"
    r"|(?P<m3>[0-9]{1,2})[-/](?P<d3>[0-9]{1,2}))"
)
_TIME = (
    r"(?P<part>上午|早上|早晨|凌晨|中午|下午|傍晚|晚上)?\s*(?P<h>[0-9]{1,2})"
    r"(?::(?P<min>[0-9]{2})(?::00)?|[点點时時](?:(?P<min2>[0-9]{1,2})分?|(?P<half>半))?)"
    r"\s*(?P<ampm>am|pm)?"
)
TIME_PATTERN = re.compile(rf"{_DATE}(?:t|[\s,]*){_TIME}")
RELATIVE_DAYS = {
    "今天": 0,
    "今日": 0,
    "today": 0,
    "明天": 1,
    "明日": 1,
    "tomorrow": 1,
    "后天": 2,
    "後天": 2,
}
AFTERNOON = {"下午", "傍晚", "晚上", "pm"}
MORNING = {"上午", "早上", "早晨", "凌晨", "am"}


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` later, the day clamped to the month's end."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, monthrange(year, month)[1]))


def shown(instant: datetime, tz: tzinfo) -> str:
    return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def parse_meeting_time(text: str, *, now: datetime, tz: tzinfo) -> datetime:
    """A meeting's start, typed in local time (``tz``), as an aware UTC datetime.

    Accepts ``2026-03-20 14:30`` (also ``/`` ``.`` ``T``), ``2026年3月20日 14:30``,
    ``3月20日 下午2点半``, ``03-20 14:30``, ``明天 15:00``; full-width digits and colons too.
    A date without a year is this year's, or next year's if this year's passed over a month
    ago. Refuses what it cannot read, dates that do not exist, the past, and more than a year
    ahead — always with :class:`InvalidInput`.
    """
    normal = " ".join(unicodedata.normalize("NFKC", text or "").lower().split())
    if len(normal) > MAX_TIME_INPUT:
        raise TimeNotUnderstood()
    found = TIME_PATTERN.fullmatch(normal)
    if found is None:
        raise TimeNotUnderstood()
    parts = found.groupdict()
    today = now.astimezone(tz).date()
    hour, minute = _hour_minute(parts)
    try:
        if parts["rel"]:
            day = today + timedelta(days=RELATIVE_DAYS[parts["rel"]])
            year, month, mday = day.year, day.month, day.day
        else:
            year_text = parts["y"] or parts["y2"]
            month = int(parts["m"] or parts["m2"] or parts["m3"])
            mday = int(parts["d"] or parts["d2"] or parts["d3"])
            year = int(year_text) if year_text else today.year
            if not year_text and today - date(year, month, mday) > RECENT_TYPO:
                year += 1
        local = datetime(year, month, mday, hour, minute, tzinfo=tz)
    except ValueError:
        raise InvalidInput(N_("There is no such date or time: {text}."), text=normal) from None
    starts_at = local.astimezone(now.tzinfo)
    if starts_at <= now:
        raise InvalidInput(
            N_("That time has already passed: {when}. Please give a time in the future."),
            when=shown(starts_at, tz),
        )
    if local > add_months(now.astimezone(tz), 12 * MAX_AHEAD_YEARS):
        raise InvalidInput(
            N_("That is more than a year ahead ({when}). Please give a time within a year."),
            when=shown(starts_at, tz),
        )
    return starts_at


def _hour_minute(parts: dict[str, str | None]) -> tuple[int, int]:
    hour = int(parts["h"] or 0)
    minute = 30 if parts["half"] else int(parts["min"] or parts["min2"] or 0)
    marker = parts["ampm"] or parts["part"]
    if (marker in AFTERNOON and hour < 12) or (marker == "中午" and hour < 6):
        hour += 12
    elif marker in MORNING and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        shown_time = f"{hour}:{minute:02d}"
        raise InvalidInput(N_("There is no such date or time: {text}."), text=shown_time)
    return hour, minute


def clean_line(raw: str | None, *, maximum: int, what: str) -> str:
    """A title or place: one line, trimmed, bounded, with at least one letter or digit."""
    text = " ".join((raw or "").split())
    if not any(ch.isalnum() for ch in text):
        raise InvalidInput(N_("Please write the {what} in words."), what=what)
    if len(text) > maximum:
        raise InvalidInput(
            N_("That is {length} characters; please keep it under {limit}."),
            length=len(text),
            limit=maximum,
        )
    return text


def clean_title(raw: str | None) -> str:
    return clean_line(raw, maximum=MAX_TITLE, what=N_("meeting title"))


def clean_place(raw: str | None) -> str:
    return clean_line(raw, maximum=MAX_PLACE, what=N_("meeting place"))


def occurrences(
    first: datetime, recurrence: Recurrence | None, count: int, tz: tzinfo
) -> list[datetime]:
    """Start times of a series: the same local wall time each week, month or quarter."""
    if recurrence is None:
        return [first]
    local = first.astimezone(tz)
    starts: list[datetime] = []
    for index in range(count):
        if recurrence == Recurrence.WEEKLY:
            moment = (local.replace(tzinfo=None) + timedelta(weeks=index)).replace(tzinfo=tz)
        else:
            months = index * (1 if recurrence == Recurrence.MONTHLY else 3)
            moment = add_months(local, months)
        starts.append(moment.astimezone(first.tzinfo))
    return starts
