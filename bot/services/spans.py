"""The stretch of days a ledger or a spot check covers, as a person types it (pure).

``/export visits 上月`` · ``/spotcheck 本季度`` · ``/export tickets 2026-10`` ·
``/export meetings 2026Q3`` · ``/export tickets 2026-10-08 2026-10-31``. Accepted, in any of
the three languages, full-width characters forgiven:

- nothing: this month; 本月 / this month; 上月 / last month; 本季度 / this quarter;
  上季度 / last quarter; 今年 / this year; 去年 / last year;
- a month (``2026-10``, ``2026/10``, ``2026年10月``), a quarter (``2026Q3``, ``2026-Q3``,
  ``2026年第3季度``), a year (``2026``, ``2026年``);
- two days, the last included (``2026-10-08 2026-10-31``, ``2026-10-08..2026-10-31``,
  ``2026-10-08至2026-10-31``, ``~`` or ``到`` between them), or one day.

Anything else, an impossible date, an end before the start, a start after today or more than
:data:`MAX_DAYS` days is refused with a translated answer that repeats what was typed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from bot.errors import InvalidInput
from bot.i18n import N_
from bot.services.periods import PeriodKind, period_end, period_start

MAX_DAYS = 366
GRID_CODE_DIGITS = 6  # a first word this long and all digits is a grid code, not a year
MAX_SHOWN = 30

BAD_SPAN = N_(
    "I cannot read “{value}” as a period. Write 本月, 上月, 本季度, 上季度, a month like "
    "2026-10, a quarter like 2026Q3, or two dates like 2026-10-01 2026-10-31."
)
BAD_DATE = N_("There is no such day: {value}.")
BACKWARDS = N_("The period ends before it begins: {value}.")
TOO_LONG = N_("Please choose a period of at most {days} days.")
NOT_YET = N_("That period has not begun yet: {value}.")


@dataclass(frozen=True)
class Span:
    """Local days from ``start`` to ``end`` (exclusive)."""

    start: date
    end: date

    @property
    def last(self) -> date:
        return self.end - timedelta(days=1)

    def label(self) -> str:
        return f"{self.start.isoformat()} — {self.last.isoformat()}"


WORDS: dict[str, str] = {
    "this month": "this_month",
    "month": "this_month",
    "本月": "this_month",
    "这个月": "this_month",
    "這個月": "this_month",
    "last month": "last_month",
    "上月": "last_month",
    "上个月": "last_month",
    "上個月": "last_month",
    "this quarter": "this_quarter",
    "quarter": "this_quarter",
    "本季度": "this_quarter",
    "本季": "this_quarter",
    "last quarter": "last_quarter",
    "上季度": "last_quarter",
    "上季": "last_quarter",
    "this year": "this_year",
    "year": "this_year",
    "今年": "this_year",
    "本年": "this_year",
    "last year": "last_year",
    "去年": "last_year",
}

_DAY = r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"
_ONE_DAY = re.compile(_DAY)
_TWO_DAYS = re.compile(_DAY + r"\s*(?:\.\.|~|至|到|—|–|\s)\s*" + _DAY)
_MONTH = re.compile(r"(\d{4})[-/.年](\d{1,2})月?")
_QUARTER = re.compile(r"(?:(\d{4})\s*[-年]?\s*)?(?:q|第)([1-4])(?:季度|季)?")
_YEAR = re.compile(r"(\d{4})年?")


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).strip().lower().split())


def _shown(text: str) -> str:
    cleaned = "".join(ch for ch in text.strip() if ch.isprintable())
    return cleaned if len(cleaned) <= MAX_SHOWN else cleaned[: MAX_SHOWN - 1] + "…"


def _day(parts: tuple[str, ...], typed: str) -> date:
    year, month, day = parts
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        raise InvalidInput(BAD_DATE, value=_shown(typed)) from None


def _period(kind: PeriodKind, day: date) -> Span:
    start = period_start(kind, day)
    return Span(start, period_end(kind, start))


def parse_span(text: str | None, today: date) -> Span:
    """The span ``text`` names, seen from ``today`` (the community's local day)."""
    typed = text or ""
    folded = _fold(typed)
    span = _named(folded, today) if folded in WORDS or not folded else None
    if span is None:
        span = _written(folded, typed)
    if span.end <= span.start:
        raise InvalidInput(BACKWARDS, value=_shown(typed))
    if (span.end - span.start).days > MAX_DAYS:
        raise InvalidInput(TOO_LONG, days=MAX_DAYS)
    if span.start > today:
        raise InvalidInput(NOT_YET, value=_shown(typed))
    return span


def _named(folded: str, today: date) -> Span:
    word = WORDS.get(folded, "this_month")
    if word == "this_month":
        return _period(PeriodKind.MONTH, today)
    if word == "last_month":
        return _period(PeriodKind.MONTH, today.replace(day=1) - timedelta(days=1))
    if word == "this_quarter":
        return _period(PeriodKind.QUARTER, today)
    if word == "last_quarter":
        return _period(
            PeriodKind.QUARTER, period_start(PeriodKind.QUARTER, today) - timedelta(days=1)
        )
    if word == "this_year":
        return _period(PeriodKind.YEAR, today)
    return _period(PeriodKind.YEAR, date(today.year - 1, 1, 1))


def _written(folded: str, typed: str) -> Span:
    if match := _TWO_DAYS.fullmatch(folded):
        first = _day(match.group(1, 2, 3), typed)
        last = _day(match.group(4, 5, 6), typed)
        return Span(first, last + timedelta(days=1))
    if match := _ONE_DAY.fullmatch(folded):
        day = _day(match.group(1, 2, 3), typed)
        return Span(day, day + timedelta(days=1))
    if match := _MONTH.fullmatch(folded):
        year, month = int(match.group(1)), int(match.group(2))
        if not 1 <= month <= 12 or year < 2000:
            raise InvalidInput(BAD_DATE, value=_shown(typed))
        return _period(PeriodKind.MONTH, date(year, month, 1))
    if match := _QUARTER.fullmatch(folded):
        if match.group(1) is None:
            raise InvalidInput(BAD_SPAN, value=_shown(typed))  # Q3 alone: which year?
        year, quarter = int(match.group(1)), int(match.group(2))
        if year < 2000:
            raise InvalidInput(BAD_DATE, value=_shown(typed))
        return _period(PeriodKind.QUARTER, date(year, 3 * quarter - 2, 1))
    if match := _YEAR.fullmatch(folded):
        year = int(match.group(1))
        if year < 2000:
            raise InvalidInput(BAD_DATE, value=_shown(typed))
        return _period(PeriodKind.YEAR, date(year, 1, 1))
    raise InvalidInput(BAD_SPAN, value=_shown(typed))


def grid_and_span(text: str | None, today: date) -> tuple[str | None, Span]:
    """``[grid code] [period]`` after a command: a first word of six or more digits is a grid
    code (full-width digits forgiven); the rest is the period (:func:`parse_span`)."""
    words = (text or "").split(maxsplit=1)
    if words:
        first = unicodedata.normalize("NFKC", words[0])
        if first.isdigit() and len(first) >= GRID_CODE_DIGITS:
            return words[0], parse_span(words[1] if len(words) > 1 else None, today)
    return None, parse_span(text, today)
