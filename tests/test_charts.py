"""Charts render in every language with the bundled CJK font: a missing glyph is a warning,
and warnings are errors here, so a chart that would show boxes fails."""

from __future__ import annotations

import asyncio
import os
import warnings
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.services import charts, score_views
from bot.services.indicators import GridRef, Ratio
from bot.services.periods import Period, PeriodKind
from bot.services.scorecards import Ranking, Scorecard, rank
from bot.settings import LOCALES

SHANGHAI = ZoneInfo("Asia/Shanghai")
PNG = b"\x89PNG\r\n\x1a\n"
NAMES = [
    "王芳",
    "李建國",
    "張麗華",
    "陈晓东",
    "黄志强",
    "林淑貞",
    "郭德綱",
    "謝霆鋒",
    "赵云",
    "钱学森",
    "孙悦",
    "欧阳娜娜",
]


def a_ranking(period: Period, count: int = 12) -> Ranking:
    cards = [
        Scorecard(
            subject_id=index + 1,
            name=NAMES[index % len(NAMES)],
            grid_name=f"杏東花園{index + 1}號樓",
            figures={"visits": Ratio(30 - 2 * index, 30), "meetings": Ratio(1, 1)},
            vetoed=index == 3,
            score=95.0 - 6 * index,
        )
        for index in range(count)
    ]
    start = datetime(period.start.year, period.start.month, 1, tzinfo=SHANGHAI).astimezone(UTC)
    end = datetime(period.end.year, period.end.month, 1, tzinfo=SHANGHAI).astimezone(UTC)
    ranked = rank(cards)
    return Ranking(
        root=GridRef(1, "350211001001", "杏东社区", 1),
        period=period,
        start=start,
        end=end,
        workers=ranked,
        grids=rank(cards[:3]),
        own=ranked[5] if count > 5 else None,
    )


PERIODS = [
    Period(PeriodKind.MONTH, date(2026, 11, 1)),
    Period(PeriodKind.QUARTER, date(2026, 7, 1)),
    Period(PeriodKind.YEAR, date(2025, 1, 1)),
]


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("period", PERIODS, ids=lambda p: p.kind.value)
def test_every_chart_renders_in_every_language_with_every_glyph(
    locale: str, period: Period
) -> None:
    ranking = a_ranking(period)
    drawn = score_views.charts_for(ranking, locale, SHANGHAI)
    assert len(drawn) == 2  # the workers, and the grids below the root
    for chart in drawn:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a missing glyph is a UserWarning
            png = charts.draw_ranking(chart)
        assert png.startswith(PNG) and len(png) > 10_000
        keep = os.environ.get("GRIDBOT_CHART_DIR")  # to look at them: set it to a folder
        if keep:
            name = f"{locale}-{period.kind.value}-{len(chart.bars)}.png"
            (Path(keep) / name).write_bytes(png)
    workers = drawn[0]
    # 12 ranked: the best five and the worst five, with the gap between them
    assert len(workers.bars) == 10 and workers.gap_after == 5
    assert [b.best for b in workers.bars] == [True] * 5 + [False] * 5
    assert workers.bars[-1].vetoed  # the vetoed one is last, whatever its score


def test_a_glyph_the_font_lacks_is_caught() -> None:
    """The check above would see boxes: a character outside Noto Sans CJK warns."""
    chart = score_views.ranking_chart(a_ranking(PERIODS[0], 2), "en", SHANGHAI, of_grids=False)
    odd = charts.RankingChart(**{**chart.__dict__, "title": "\U00013000"})  # a hieroglyph
    with pytest.warns(UserWarning):
        charts.draw_ranking(odd)


def test_nothing_to_rank_is_still_a_picture() -> None:
    ranking = a_ranking(PERIODS[0], 0)
    [chart] = score_views.charts_for(ranking, "zh_Hans", SHANGHAI)[:1]
    png = charts.draw_ranking(chart)
    assert png.startswith(PNG)


def test_the_font_is_the_bundled_file_whatever_the_machine_has() -> None:
    for locale in LOCALES:
        assert Path(charts.font(locale).get_file() or "").resolve() == charts.FONT_FILE.resolve()


async def test_charts_render_side_by_side_off_the_event_loop() -> None:
    drawn = [
        chart
        for locale in LOCALES
        for chart in score_views.charts_for(a_ranking(PERIODS[0]), locale, SHANGHAI)
    ]
    pngs = await asyncio.gather(*(charts.render(chart) for chart in drawn))
    assert all(p.startswith(PNG) for p in pngs)
