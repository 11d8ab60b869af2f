"""Reading and writing the spreadsheets admins exchange with the bot (台账: CSV and XLSX).

Reading (:func:`read_table`) turns the bytes of an uploaded file into a :class:`Table`: the
header row found and matched against a list of :class:`Column` specs, and every non-empty row
below it as text cells, each with the row number the admin sees in Excel (the first row of the
sheet is row 1). It accepts

- XLSX workbooks (the first sheet, read with openpyxl in read-only mode, formulas as their
  last computed values, merged cells as their top-left value);
- CSV text in UTF-8, UTF-8 with a BOM, UTF-16 with a BOM (Excel's "Unicode text") or
  GBK/GB18030 (what Excel in China writes), separated by commas, tabs or semicolons, with any
  mix of line endings.

Everything the file can get wrong as a whole — too big, unreadable, no header row, a column
missing or given twice — is a :class:`FileProblem` (an ``InvalidInput``) with a message for the
admin. What a single row gets wrong is for the caller to report.

Writing (:func:`write_workbook`) streams rows into an XLSX workbook; every text cell goes
through :func:`neutralise`, so nothing in a ledger can run as a formula when it is opened.

Pure: no database, no clock.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from time import monotonic
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from bot.errors import InvalidInput
from bot.i18n import N_

MAX_FILE_BYTES = 20 * 1024 * 1024  # what an admin may send
MAX_ROWS = 100_000  # data rows in one file
MAX_COLUMNS = 100  # cells further right are ignored
HEADER_SEARCH_ROWS = 10  # a title row or two may sit above the header row
MAX_UNZIPPED_BYTES = 400 * 1024 * 1024  # a workbook that inflates beyond this is refused
MAX_CELL = 2_000  # characters in one cell: no field of ours is longer
PARSE_SECONDS = 60.0  # a file that takes longer to read is refused (read in a worker thread)

XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, and password-protected .xlsx
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_EXCEL_EXACT_DIGITS = 15  # Excel keeps 15 significant digits of a number

TOO_BIG = N_("The file is larger than {limit} MB. Please split it into smaller files.")
TOO_MANY_ROWS = N_("The file has more than {limit} rows. Please split it into smaller files.")
EMPTY_FILE = N_("The file is empty.")
OLD_EXCEL = N_(
    "This is an old Excel file (.xls) or a password-protected one. "
    "Please save it as .xlsx or CSV and send it again."
)
BAD_WORKBOOK = N_("The file could not be opened as an Excel workbook (.xlsx).")
BAD_TEXT = N_(
    "The file is neither an Excel workbook nor CSV text in UTF-8 or GBK. "
    "Please save it as .xlsx or CSV (UTF-8) and send it again."
)
BAD_CSV_ROW = N_("Row {row} of the file could not be read.")
NO_HEADER = N_("No header row was found. The file needs the columns {columns}.")
MISSING_COLUMNS = N_("The file lacks the columns {columns}.")
DUPLICATE_COLUMN = N_("The column {column} appears twice (columns {first} and {second}).")
NO_ROWS = N_("The file has no rows to import below its header row.")
LONG_CELL = N_(
    "A cell in row {row} is longer than {limit} characters. Please check the file and send it "
    "again."
)
TOO_SLOW = N_(
    "The file takes too long to read (more than {limit} seconds). Please save it again as a "
    "plain .xlsx or CSV, or split it into smaller files."
)


class FileProblem(InvalidInput):
    """An uploaded file that cannot be read as a whole; ``params`` fill the message."""


@dataclass(frozen=True)
class Column:
    """One column a reader understands.

    ``key`` is its English name (also accepted as a header), ``label`` a catalog msgid for
    the header a template or a ledger shows, ``aliases`` the other headers people write.
    The header of a file matches when it equals any of them after :func:`header_key`, or the
    label's translation in any catalog (``labels_in_catalogs``, given by the caller).
    """

    key: str
    label: str
    aliases: tuple[str, ...] = ()
    required: bool = False

    @property
    def shown(self) -> str:
        """How the column is named in a message: the usual Chinese header and the key."""
        return f"{self.aliases[0]} ({self.key})" if self.aliases else self.key


@dataclass(frozen=True, slots=True)
class Row:
    """One non-empty row: its number in the sheet and its cells as text.

    ``imprecise`` holds the indexes of cells that were numbers too long for Excel to keep
    exactly (16 digits and more): their last digits may already be lost.
    """

    number: int
    cells: tuple[str, ...]
    imprecise: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Table:
    """A file read against column specs: where each known column is, and the rows."""

    header_row: int
    positions: dict[str, int]  # column key -> cell index
    headers: dict[str, str]  # column key -> the header as written in the file
    rows: list[Row] = field(default_factory=list)

    def has(self, key: str) -> bool:
        return key in self.positions

    def cell(self, row: Row, key: str) -> str:
        """The text of ``row`` under column ``key``; empty if the column or the cell is absent."""
        index = self.positions.get(key)
        if index is None or index >= len(row.cells):
            return ""
        return row.cells[index]

    def is_imprecise(self, row: Row, key: str) -> bool:
        index = self.positions.get(key)
        return index is not None and index in row.imprecise


# --- reading ----------------------------------------------------------------------------------


def read_table(
    data: bytes, columns: Sequence[Column], labels_in_catalogs: dict[str, set[str]]
) -> Table:
    """Read an uploaded file and find its header row; raise FileProblem if it cannot be used.

    ``labels_in_catalogs`` maps a column key to the translations of its label in every
    catalog, so a ledger exported in any language reads back.
    """
    rows = read_rows(data)
    known = _header_index(columns, labels_in_catalogs)
    found = _find_header(rows, known)
    if found is None:
        required = [c.shown for c in columns if c.required]
        raise FileProblem(NO_HEADER, columns="、".join(required))
    header, matches = found
    positions: dict[str, int] = {}
    headers: dict[str, str] = {}
    for index, key in matches:
        if key in positions:
            raise FileProblem(
                DUPLICATE_COLUMN,
                column=_shown(header.cells[index]),
                first=get_column_letter(positions[key] + 1),
                second=get_column_letter(index + 1),
            )
        positions[key] = index
        headers[key] = header.cells[index]
    missing = [c.shown for c in columns if c.required and c.key not in positions]
    if missing:
        raise FileProblem(MISSING_COLUMNS, columns="、".join(missing))
    body = [r for r in rows if r.number > header.number]
    if not body:
        raise FileProblem(NO_ROWS)
    return Table(header_row=header.number, positions=positions, headers=headers, rows=body)


def read_rows(data: bytes) -> list[Row]:
    """Every non-empty row of a CSV or XLSX file, cells stripped, at most MAX_ROWS + a header.

    Refused while reading (not after): more rows than MAX_ROWS, a cell longer than MAX_CELL,
    only the first MAX_COLUMNS columns read, and PARSE_SECONDS at most — call it in a worker
    thread, never on the event loop."""
    if len(data) > MAX_FILE_BYTES:
        raise FileProblem(TOO_BIG, limit=MAX_FILE_BYTES // (1024 * 1024))
    if not data.strip():
        raise FileProblem(EMPTY_FILE)
    if data.startswith(XLSX_MAGIC):
        rows = _xlsx_rows(data)
    elif data.startswith(OLE_MAGIC):
        raise FileProblem(OLD_EXCEL)
    else:
        rows = _csv_rows(decode_text(data))
    kept: list[Row] = []
    deadline = monotonic() + PARSE_SECONDS
    for row in rows:
        if row.number > 2 * MAX_ROWS + HEADER_SEARCH_ROWS or len(kept) > MAX_ROWS + 1:
            raise FileProblem(TOO_MANY_ROWS, limit=MAX_ROWS)
        if any(len(cell) > MAX_CELL for cell in row.cells):
            raise FileProblem(LONG_CELL, row=row.number, limit=MAX_CELL)
        if monotonic() > deadline:
            raise FileProblem(TOO_SLOW, limit=int(PARSE_SECONDS))
        if any(row.cells):
            kept.append(row)
    if not kept:
        raise FileProblem(EMPTY_FILE)
    return kept


def decode_text(data: bytes) -> str:
    """The text of a CSV file: BOM first, then strict UTF-8, then GB18030 (a superset of GBK)."""
    if data.startswith(codecs.BOM_UTF8):
        encodings: tuple[str, ...] = ("utf-8-sig",)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ("utf-16",)
    else:
        encodings = ("utf-8", "gb18030")
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break  # binary data, or UTF-16 without its BOM
        return text
    raise FileProblem(BAD_TEXT)


def _csv_rows(text: str) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    number = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise FileProblem(BAD_CSV_ROW, row=number + 1) from error
        number += 1
        yield Row(number, tuple(_text(c) for c in _trimmed(cells[:MAX_COLUMNS])))


def _delimiter(text: str) -> str:
    """Comma, tab or semicolon: whichever the first non-empty line holds most of."""
    for line in text.splitlines()[: HEADER_SEARCH_ROWS * 2]:
        if line.strip():
            counts = {d: line.count(d) for d in (",", "\t", ";")}
            best = max(counts, key=lambda d: counts[d])
            return best if counts[best] else ","
    return ","


def _xlsx_rows(data: bytes) -> Iterator[Row]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise FileProblem(BAD_WORKBOOK) from error
    if inflated > MAX_UNZIPPED_BYTES:
        raise FileProblem(TOO_BIG, limit=MAX_FILE_BYTES // (1024 * 1024))
    # openpyxl raises whatever its XML and zip layers raise on a damaged or hostile file;
    # all of it means the same to the admin: this workbook cannot be read.
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:
        raise FileProblem(BAD_WORKBOOK) from error
    try:
        if not workbook.worksheets:
            raise FileProblem(BAD_WORKBOOK)
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # trust the cells, not the size some writers declare
        values = sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS)
        number = 0
        while True:
            try:
                raw = next(values)
            except StopIteration:
                return
            except FileProblem:
                raise
            except Exception as error:
                raise FileProblem(BAD_WORKBOOK) from error
            number += 1
            cells: list[str] = []
            imprecise: set[int] = set()
            for index, value in enumerate(_trimmed(list(raw[:MAX_COLUMNS]))):
                text, exact = _cell_text(value)
                cells.append(text)
                if not exact:
                    imprecise.add(index)
            yield Row(number, tuple(cells), frozenset(imprecise))
    finally:
        workbook.close()


def _cell_text(value: Any) -> tuple[str, bool]:
    """A cell value as text, and whether it is exactly what the admin typed."""
    if value is None:
        return "", True
    if isinstance(value, bool):
        return ("true" if value else "false"), True
    if isinstance(value, int):
        return str(value), len(str(abs(value))) <= _EXCEL_EXACT_DIGITS
    if isinstance(value, float):
        if value.is_integer():
            whole = int(value)
            return str(whole), len(str(abs(whole))) <= _EXCEL_EXACT_DIGITS
        return str(value), True
    if isinstance(value, (datetime, date, time)):
        return value.isoformat(), True
    if isinstance(value, timedelta):
        return str(value), True
    return _text(str(value)), True


def _text(value: str) -> str:
    """A cell as read: stripped, with the quote that neutralised a formula taken off again."""
    text = value.strip()
    if text.startswith("'") and text[1:2] in FORMULA_STARTS:
        return text[1:]
    return text


def _trimmed(cells: list[Any]) -> list[Any]:
    while cells and (cells[-1] is None or (isinstance(cells[-1], str) and not cells[-1].strip())):
        cells.pop()
    return cells


def header_key(text: str) -> str:
    """A header as compared: NFKC, case-folded, no spaces, ``_`` ``-`` ``*`` or ``(…)`` notes."""
    folded = unicodedata.normalize("NFKC", text[:200]).casefold()
    folded = re.sub(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】", "", folded)
    return "".join(ch for ch in folded if not ch.isspace() and ch not in "_-*:.")


def _header_index(
    columns: Sequence[Column], labels_in_catalogs: dict[str, set[str]]
) -> dict[str, str]:
    index: dict[str, str] = {}
    for column in columns:
        names = {
            column.key,
            column.label,
            *column.aliases,
            *labels_in_catalogs.get(column.key, ()),
        }
        for name in names:
            index.setdefault(header_key(name), column.key)
    index.pop("", None)
    return index


def _find_header(
    rows: list[Row], known: dict[str, str]
) -> tuple[Row, list[tuple[int, str]]] | None:
    """The row among the first few that names the most known columns (at least two)."""
    best: tuple[Row, list[tuple[int, str]]] | None = None
    for row in rows[:HEADER_SEARCH_ROWS]:
        matches = [
            (index, known[key])
            for index, cell in enumerate(row.cells)
            if (key := header_key(cell)) in known
        ]
        if len(matches) >= 2 and (best is None or len(matches) > len(best[1])):
            best = (row, matches)
    return best


def _shown(text: str, limit: int = 40) -> str:
    cleaned = "".join(ch for ch in text[:limit] if ch.isprintable())
    return cleaned + "…" if len(text) > limit else cleaned


# --- cleaning cells ---------------------------------------------------------------------------

_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co"})


def clean_text(text: str) -> str:
    """Free text (a name, an address, a note) as stored: invisible characters dropped,
    every run of white space (new lines, full-width spaces) made one space."""
    if text.isprintable():  # no control, format or private-use characters, no odd spaces
        return " ".join(text.split())
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in _INVISIBLE
    )
    return " ".join(kept.split())


def shown(text: str, limit: int = 40) -> str:
    """A cell as quoted back in a message: cut short, invisible characters dropped."""
    return _shown(clean_text(text[: limit * 4]), limit)


# --- writing ----------------------------------------------------------------------------------

CellValue = str | int | float | bool | None

_HEADER_FONT = Font(bold=True)
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # as openpyxl refuses them
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


def neutralise(value: CellValue) -> CellValue:
    """A value safe in a spreadsheet: text that a spreadsheet would take for a formula
    (``= + - @``, tab, carriage return first) gets a leading ``'``; characters XML cannot
    hold are dropped."""
    if not isinstance(value, str):
        return value
    text = _ILLEGAL_XML.sub("", value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


@dataclass(frozen=True)
class Sheet:
    """One sheet to write: its title, header row, column widths and rows (any iterable).

    ``text_columns`` are formatted as text ("@"), so Excel keeps long codes and phone numbers
    as typed; ``choices`` offers a drop-down list of values in a column (by index).
    """

    title: str
    headers: Sequence[str]
    rows: Iterable[Sequence[CellValue]]
    widths: Sequence[int] = ()
    text_columns: frozenset[int] = frozenset()
    choices: dict[int, Sequence[str]] = field(default_factory=dict)
    auto_filter: bool = False  # a filter drop-down on each header
    watermark: str | None = None  # printed at the top and bottom of every page


def write_workbook(sheets: Sequence[Sheet]) -> bytes:
    """Stream sheets into an XLSX workbook (openpyxl write-only mode) and return its bytes."""
    writer = WorkbookWriter()
    for spec in sheets:
        writer.begin(spec)
        writer.append(spec.rows)
    return writer.save()


class WorkbookWriter:
    """An XLSX workbook written a batch of rows at a time, for a ledger too big to hold in
    memory: openpyxl's write-only mode keeps each sheet's rows in a temporary file, so only the
    batch being appended and the finished file are ever in memory.

    ``begin`` a sheet (its header row and column settings), ``append`` its rows in as many
    calls as suit the reader, ``begin`` the next sheet, and ``save`` once. One thread at a time.
    """

    def __init__(self) -> None:
        self._workbook = Workbook(write_only=True)
        self._sheet: Any = None
        self._spec: Sheet | None = None
        self._count = 0  # rows in the current sheet, its header included

    def begin(self, spec: Sheet) -> None:
        self._finish_sheet()
        sheet = self._workbook.create_sheet(title=_sheet_title(spec.title))
        for index, width in enumerate(spec.widths):
            sheet.column_dimensions[get_column_letter(index + 1)].width = width
        for index in spec.text_columns:
            sheet.column_dimensions[get_column_letter(index + 1)].number_format = "@"
        for index, values in spec.choices.items():
            letter = get_column_letter(index + 1)
            listed = ",".join(v.replace(",", " ").replace('"', "") for v in values)
            validation = DataValidation(type="list", formula1=f'"{listed}"', allow_blank=True)
            validation.add(f"{letter}2:{letter}{MAX_ROWS + 1}")
            sheet.data_validations.append(validation)
        sheet.freeze_panes = "A2"
        if spec.watermark:
            mark = spec.watermark[:250]  # Excel's header and footer hold 255 characters
            sheet.HeaderFooter.oddHeader.center.text = mark
            sheet.HeaderFooter.oddFooter.center.text = mark
            self._workbook.properties.description = mark
        header: list[WriteOnlyCell] = []
        for title in spec.headers:
            cell = WriteOnlyCell(sheet, value=neutralise(title))
            cell.font = _HEADER_FONT
            cell.fill = _HEADER_FILL
            header.append(cell)
        sheet.append(header)
        self._sheet, self._spec, self._count = sheet, spec, 1

    def append(self, rows: Iterable[Sequence[CellValue]]) -> None:
        if self._sheet is None:
            raise RuntimeError("begin a sheet before appending rows to it")
        for row in rows:
            self._sheet.append([neutralise(value) for value in row])
            self._count += 1

    def save(self) -> bytes:
        self._finish_sheet()
        buffer = io.BytesIO()
        self._workbook.save(buffer)
        return buffer.getvalue()

    def _finish_sheet(self) -> None:
        spec = self._spec
        if spec is not None and spec.auto_filter and spec.headers:
            last = get_column_letter(len(spec.headers))
            self._sheet.auto_filter.ref = f"A1:{last}{self._count}"
        self._sheet, self._spec = None, None


def _sheet_title(title: str) -> str:
    """Excel's rules for a sheet name: at most 31 characters, none of ``[]:*?/\\``."""
    cleaned = "".join(ch for ch in clean_text(title) if ch not in "[]:*?/\\")
    return cleaned[:31] or "Sheet"
