"""Charts as PNG (图表): matplotlib's object API, the Agg renderer, and a CJK font of our own.

**The font** is Noto Sans CJK (SIL Open Font License 1.1), installed from PyPI with the bot
(``noto-cjk-sans-otc``): a fresh machine with no Chinese font renders the same charts. Every
text names that file and face explicitly (a :class:`~matplotlib.font_manager.FontPath`), so
nothing depends on what fonts the machine happens to have. The collection holds a face per
region: Simplified Chinese text is set in the SC face, Traditional in the TC face.

**Threads.** Drawing runs off the event loop (:func:`render` hands it to a worker thread).
Each chart is its own :class:`~matplotlib.figure.Figure` on its own Agg canvas — never
pyplot, whose global "current figure" is shared by every thread.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import noto_cjk_sans_otc

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

# matplotlib is imported where a chart is drawn, not when the bot starts (it takes a while)

FONT_FILE = Path(str(noto_cjk_sans_otc.FONT_PATH))
FAMILIES: dict[str, str] = {
    "zh_Hans": "Noto Sans CJK SC",
    "zh_Hant": "Noto Sans CJK TC",
    "en": "Noto Sans CJK SC",
}
RED = "#c62828"  # 红榜
BLACK = "#37474f"  # 黑榜
GREY = "#9e9e9e"  # vetoed
_font_lock = threading.Lock()
_faces: dict[str, int] = {}


def _face_indices() -> dict[str, int]:
    """Family name -> face index in the bundled collection (read once)."""
    from matplotlib.ft2font import FT2Font

    with _font_lock:
        if not _faces:
            first = FT2Font(str(FONT_FILE))
            for index in range(first.num_faces):
                face = first if index == 0 else FT2Font(str(FONT_FILE), face_index=index)
                _faces.setdefault(face.family_name, index)
        return _faces


def font(locale: str, size: float = 11) -> FontProperties:
    """The chart font for ``locale``: the bundled file and face, named by path (never looked
    up by family name, which would find whatever the machine has)."""
    from matplotlib.font_manager import FontPath, FontProperties

    family = FAMILIES.get(locale, FAMILIES["zh_Hans"])
    index = _face_indices().get(family)
    if index is None:
        raise RuntimeError(f"{FONT_FILE} has no face {family}")
    return FontProperties(fname=FontPath(str(FONT_FILE), index), size=size)


@dataclass(frozen=True)
class Bar:
    label: str  # "1. 王芳 · 幸福里一网格"
    value: float  # 0..100
    text: str  # printed at the bar's end: "86.0", or the veto mark
    best: bool  # 红榜 (True) or 黑榜 (False)
    vetoed: bool = False


@dataclass(frozen=True)
class RankingChart:
    """Everything a ranking chart shows, already translated."""

    locale: str
    title: str
    subtitle: str
    axis: str  # the x axis: "score"
    best_label: str
    worst_label: str
    empty: str  # shown when there is nothing to rank
    bars: tuple[Bar, ...]
    gap_after: int | None = None  # a "…" row after this many bars (the middle left out)


def draw_ranking(chart: RankingChart) -> bytes:
    """The 红黑榜 as a horizontal bar chart, best at the top; PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    regular = font(chart.locale, 10)
    title_font = font(chart.locale, 14)
    rows = len(chart.bars) + (1 if chart.gap_after is not None else 0)
    figure = Figure(figsize=(7.5, 1.8 + 0.42 * max(rows, 2)), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    figure.suptitle(chart.title, fontproperties=title_font)
    axes.set_title(chart.subtitle, fontproperties=regular, color=BLACK)
    if not chart.bars:
        axes.axis("off")
        axes.text(0.5, 0.5, chart.empty, ha="center", va="center", fontproperties=regular)
        return _png(figure)
    positions: list[float] = []
    row = 0.0
    for index in range(len(chart.bars)):
        if chart.gap_after is not None and index == chart.gap_after:
            row += 1
        positions.append(row)
        row += 1
    colours = [GREY if b.vetoed else (RED if b.best else BLACK) for b in chart.bars]
    axes.barh(positions, [b.value for b in chart.bars], color=colours, height=0.7)
    axes.set_yticks(positions, labels=[b.label for b in chart.bars])
    for label in [*axes.get_yticklabels(), *axes.get_xticklabels()]:
        label.set_fontproperties(regular)
    for position, bar in zip(positions, chart.bars, strict=True):
        axes.text(
            bar.value + 1, position, bar.text, va="center", fontproperties=regular, color=BLACK
        )
    if chart.gap_after is not None:
        axes.text(2, chart.gap_after, "⋯", va="center", fontproperties=regular, color=GREY)
    axes.set_xlim(0, 128)  # room on the right for the values and the legend
    axes.set_xticks([0, 20, 40, 60, 80, 100])
    axes.set_ylim(row - 0.4, -0.6)  # best at the top
    axes.set_xlabel(chart.axis, fontproperties=regular)
    axes.spines[["top", "right"]].set_visible(False)
    handles = [
        Patch(color=RED, label=chart.best_label),
        Patch(color=BLACK, label=chart.worst_label),
    ]
    axes.legend(handles=handles, prop=regular, loc="lower right", frameon=False)
    return _png(figure)


def _png(figure: Figure) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


async def render(chart: RankingChart) -> bytes:
    """Draw in a worker thread: the event loop goes on serving other chats meanwhile."""
    return await asyncio.to_thread(draw_ranking, chart)


def pick(count: int, shown: int) -> tuple[list[int], int | None]:
    """Which of ``count`` ranked rows a 红黑榜 shows: all when they fit in ``2 × shown``,
    else the first and the last ``shown`` with a gap between (its position returned)."""
    if count <= 2 * shown:
        return list(range(count)), None
    return [*range(shown), *range(count - shown, count)], shown


def split_best(count: int, shown: int) -> Sequence[bool]:
    """Which picked rows are on the red list: the first half (rounded up), at most ``shown``."""
    red = min(shown, (count + 1) // 2)
    return [index < red for index in range(count)]
