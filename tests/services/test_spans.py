"""The periods people type after /export and /spotcheck: every accepted form, and hostile
input answered with a translated refusal that repeats (a short, printable piece of) it."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import InvalidInput
from bot.services.spans import (
    BACKWARDS,
    BAD_DATE,
    BAD_SPAN,
    MAX_DAYS,
    NOT_YET,
    TOO_LONG,
    Span,
    grid_and_span,
    parse_span,
)

TODAY = date(2026, 12, 7)


@pytest.mark.parametrize(
    ("typed", "start", "end"),
    [
        (None, date(2026, 12, 1), date(2027, 1, 1)),
        ("本月", date(2026, 12, 1), date(2027, 1, 1)),
        ("This Month", date(2026, 12, 1), date(2027, 1, 1)),
        ("上月", date(2026, 11, 1), date(2026, 12, 1)),
        ("上個月", date(2026, 11, 1), date(2026, 12, 1)),
        ("本季度", date(2026, 10, 1), date(2027, 1, 1)),
        ("上季度", date(2026, 7, 1), date(2026, 10, 1)),
        ("去年", date(2025, 1, 1), date(2026, 1, 1)),
        ("2026-10", date(2026, 10, 1), date(2026, 11, 1)),
        ("2026年3月", date(2026, 3, 1), date(2026, 4, 1)),
        ("２０２６／０３", date(2026, 3, 1), date(2026, 4, 1)),
        ("2026Q3", date(2026, 7, 1), date(2026, 10, 1)),
        ("2026年第2季度", date(2026, 4, 1), date(2026, 7, 1)),
        ("2026-10-08 2026-10-31", date(2026, 10, 8), date(2026, 11, 1)),
        ("2026-10-08..2026-10-31", date(2026, 10, 8), date(2026, 11, 1)),
        ("2026年10月8日至2026年10月31日", date(2026, 10, 8), date(2026, 11, 1)),
        ("2026-12-07", date(2026, 12, 7), date(2026, 12, 8)),
    ],
)
def test_accepted_periods(typed: str | None, start: date, end: date) -> None:
    assert parse_span(typed, TODAY) == Span(start, end)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("2026-02-30", BAD_DATE),
        ("2026-13", BAD_DATE),
        ("1999-01", BAD_DATE),
        ("2026-10-31 2026-10-01", BACKWARDS),
        ("2020-01-01 2026-01-01", TOO_LONG),
        ("2027-01", NOT_YET),
        ("明年", BAD_SPAN),
        ("Q3", BAD_SPAN),
        ('=HYPERLINK("x")', BAD_SPAN),
        ("2026-10-01 2026-10-31 2026-11-01", BAD_SPAN),
        ("9" * 500, BAD_SPAN),
    ],
)
def test_refused_periods(typed: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_span(typed, TODAY)
    assert refused.value.message == message
    assert len(str(refused.value.params.get("value", ""))) <= 30


@given(st.text(max_size=200))
def test_any_text_is_a_span_or_a_clear_refusal(typed: str) -> None:
    try:
        span = parse_span(typed, TODAY)
    except InvalidInput as refused:
        assert refused.message in {BAD_SPAN, BAD_DATE, BACKWARDS, TOO_LONG, NOT_YET}
        return
    assert span.start < span.end and (span.end - span.start).days <= MAX_DAYS


def test_a_grid_code_before_the_period() -> None:
    assert grid_and_span("350211001003 上月", TODAY) == (
        "350211001003",
        Span(date(2026, 11, 1), date(2026, 12, 1)),
    )
    assert grid_and_span("2026 ", TODAY) == (None, Span(date(2026, 1, 1), date(2027, 1, 1)))
    assert grid_and_span(None, TODAY)[0] is None
