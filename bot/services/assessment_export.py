"""The assessment workbook (考核台账) for the street's monthly meeting: ``/score export``.

Sheets, in the reader's language:

- **Summary**: the grids one tier below the ranked subtree (the communities, for the street),
  ranked, with every measure's count, base and share, and a total row (the sum of the rows);
- **one sheet per grid** of the summary: its workers, ranked within the whole subtree;
- **Definitions**: every measure's weight and definition, and the veto rules.

Formatting: the header row frozen and bold, column widths set, the score column coloured by
value (red below 60, green from 90), vetoed rows greyed. It holds staff names and counts
only — no resident's data — so nothing in it needs masking for any role that may read the
ranking; the export is audited all the same. No formulas: text is neutralised as in every
ledger.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from openpyxl import Workbook
from openpyxl.formatting.rule import CellIsRule, FormulaRule
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_, join_list
from bot.labels import HANDLING_KIND, TICKET_CATEGORY
from bot.services.assessment_policy import MEASURES, VETO_KINDS, AssessmentPolicy
from bot.services.indicators import Ratio
from bot.services.permissions import same
from bot.services.scorecards import Ranking, Scorecard
from bot.services.tabular import CellValue, neutralise
from models import AuditLog, HandlingKind, Person, TicketCategory

Translate = Callable[[str], str]

HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
LOW_FILL = PatternFill("solid", fgColor="F8CBAD")  # below 60
HIGH_FILL = PatternFill("solid", fgColor="C6EFCE")  # 90 and above
VETO_FILL = PatternFill("solid", fgColor="D9D9D9")
LOW, HIGH = 60, 90

RANK = N_("Rank")
NAME = N_("Name")
GRID = N_("Grid")
SCORE = N_("Score")
VETOED = N_("Vetoed (一票否决)")
DONE = N_("{measure}: done")
OF = N_("{measure}: of")
SHARE = N_("{measure}: %")
TOTAL = N_("Total")
YES = N_("yes")
MEASURE = N_("Measure")
WEIGHT = N_("Weight")
DEFINITION = N_("Definition")
SUMMARY = N_("Summary")
DEFINITIONS = N_("Definitions")
VETO_RULE = N_("Veto rule")
VETO_SCOPE = N_("Categories: {categories}; handling: {handling}")


@dataclass(frozen=True)
class Table:
    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[CellValue]]
    widths: Sequence[int]
    score_column: int | None = None  # 1-based
    veto_column: int | None = None


def _measure_headers(translate: Translate) -> list[str]:
    headers: list[str] = []
    for measure in MEASURES:
        title = translate(measure.title)
        headers += [
            translate(DONE).format(measure=title),
            translate(OF).format(measure=title),
            translate(SHARE).format(measure=title),
        ]
    return headers


def _measure_cells(figures: Mapping[str, Ratio]) -> list[CellValue]:
    cells: list[CellValue] = []
    for measure in MEASURES:
        ratio = figures.get(measure.key, Ratio(0, 0))
        share = None if ratio.whole == 0 else round(100.0 * ratio.part / ratio.whole, 1)
        cells += [ratio.part, ratio.whole, share]
    return cells


def _score(card: Scorecard) -> CellValue:
    return None if card.score is None else round(card.score, 1)


def tables(ranking: Ranking, policy: AssessmentPolicy, translate: Translate) -> list[Table]:
    """The workbook's sheets as plain rows (built on the event loop; cheap)."""
    measure_headers = _measure_headers(translate)
    widths = [6, 18, 12, 10] + [10] * len(measure_headers)
    summary_rows: list[list[CellValue]] = []
    totals = [0] * (3 * len(MEASURES))
    for card in ranking.grids:
        cells = _measure_cells(card.figures)
        summary_rows.append(
            [card.rank, card.name, _score(card), translate(YES) if card.vetoed else "", *cells]
        )
        for index in range(len(MEASURES)):
            totals[3 * index] += int(cells[3 * index] or 0)
            totals[3 * index + 1] += int(cells[3 * index + 1] or 0)
    total_cells: list[CellValue] = []
    for index in range(len(MEASURES)):
        part, whole = totals[3 * index], totals[3 * index + 1]
        total_cells += [part, whole, None if whole == 0 else round(100.0 * part / whole, 1)]
    summary_rows.append([None, translate(TOTAL), None, "", *total_cells])
    result = [
        Table(
            title=translate(SUMMARY),
            headers=[
                translate(RANK),
                translate(GRID),
                translate(SCORE),
                translate(VETOED),
                *measure_headers,
            ],
            rows=summary_rows,
            widths=widths,
            score_column=3,
            veto_column=4,
        )
    ]
    for grid in ranking.grids:
        members = [c for c in ranking.workers if same(c.under, grid.subject_id)]
        result.append(
            Table(
                title=grid.name,
                headers=[
                    translate(RANK),
                    translate(NAME),
                    translate(GRID),
                    translate(SCORE),
                    translate(VETOED),
                    *measure_headers,
                ],
                rows=[
                    [
                        c.rank,
                        c.name,
                        c.grid_name,
                        _score(c),
                        translate(YES) if c.vetoed else "",
                        *_measure_cells(c.figures),
                    ]
                    for c in members
                ],
                widths=[6, 12, 18, 10, 10] + [10] * len(measure_headers),
                score_column=4,
                veto_column=5,
            )
        )
    definitions: list[list[CellValue]] = [
        [translate(m.title), policy.weight(m.key), translate(m.definition)] for m in MEASURES
    ]
    kinds = {kind.key: kind for kind in VETO_KINDS}
    for rule in policy.veto:
        definitions.append(
            [
                translate(VETO_RULE),
                None,
                translate(kinds[rule.kind].definition).format(at_least=rule.at_least)
                + " "
                + translate(VETO_SCOPE).format(
                    categories=join_list(
                        translate,
                        (translate(TICKET_CATEGORY[TicketCategory(c)]) for c in rule.categories),
                    ),
                    handling=join_list(
                        translate,
                        (translate(HANDLING_KIND[HandlingKind(h)]) for h in rule.handling),
                    ),
                ),
            ]
        )
    result.append(
        Table(
            title=translate(DEFINITIONS),
            headers=[translate(MEASURE), translate(WEIGHT), translate(DEFINITION)],
            rows=definitions,
            widths=[18, 8, 90],
        )
    )
    return result


def write(tables_: Sequence[Table]) -> bytes:
    """The XLSX bytes (run it in a thread)."""
    book = Workbook()
    first = True
    taken: set[str] = set()
    for table in tables_:
        sheet = book.active if first else book.create_sheet()
        first = False
        sheet.title = _title(table.title, taken)
        sheet.append([neutralise(h) for h in table.headers])
        for cell in sheet[1]:
            cell.font, cell.fill = HEADER_FONT, HEADER_FILL
        for row in table.rows:
            sheet.append([neutralise(v) for v in row])
        for index, width in enumerate(table.widths):
            sheet.column_dimensions[get_column_letter(index + 1)].width = width
        sheet.freeze_panes = "C2" if table.score_column else "A2"
        last_row = max(2, len(table.rows) + 1)
        last_column = get_column_letter(len(table.headers))
        if table.score_column:
            letter = get_column_letter(table.score_column)
            area = f"{letter}2:{letter}{last_row}"
            sheet.conditional_formatting.add(
                area, CellIsRule(operator="lessThan", formula=[str(LOW)], fill=LOW_FILL)
            )
            sheet.conditional_formatting.add(
                area,
                CellIsRule(operator="greaterThanOrEqual", formula=[str(HIGH)], fill=HIGH_FILL),
            )
        if table.veto_column:
            veto = get_column_letter(table.veto_column)
            sheet.conditional_formatting.add(
                f"A2:{last_column}{last_row}",
                FormulaRule(formula=[f"LEN(${veto}2)>0"], fill=VETO_FILL),
            )
        for column in sheet.iter_cols(min_row=2, max_row=last_row, min_col=3):
            for cell in column:
                if isinstance(cell.value, float):
                    cell.number_format = "0.0"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _title(text: str, taken: set[str]) -> str:
    cleaned = "".join(ch for ch in text if ch not in "[]:*?/\\")[:28] or "Sheet"
    title, number = cleaned, 2
    while title.lower() in taken:
        title, number = f"{cleaned}~{number}", number + 1
    taken.add(title.lower())
    return title


async def workbook(
    session: AsyncSession,
    person: Person,
    ranking: Ranking,
    policy: AssessmentPolicy,
    *,
    translate: Translate,
    now: datetime,
) -> tuple[bytes, str]:
    """The workbook of a ranking the person may read (see :func:`scorecards.rankings_for`),
    built off the event loop, and its file name; the export is audited."""
    data = await asyncio.to_thread(write, tables(ranking, policy, translate))
    session.add(
        AuditLog(
            at=now,
            actor_id=person.id,
            action="export_assessment",
            object_type="grid",
            object_id=ranking.root.id,
            detail=f"{ranking.period.kind.value} {ranking.period.start.isoformat()}",
        )
    )
    return data, file_name(ranking)


def file_name(ranking: Ranking) -> str:
    return f"assessment-{ranking.root.code}-{ranking.period.start.isoformat()}.xlsx"
