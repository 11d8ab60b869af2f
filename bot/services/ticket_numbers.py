"""Ticket numbers (工单编号): the long one kept inside, the short one people read and say.

Every ticket has two numbers:

- ``Ticket.number``, ``<grid code>-<YYYYMMDD>-<nnn>`` (29 characters for a tier-3 grid):
  unique everywhere and telling where and when; stored, in event data and in exports;
- ``Ticket.short_number``, a sequence per street (街道: the top of the ticket's grid tree),
  1, 2, … 2048 …: what a worker reads over the phone and a resident types. People see it
  as :func:`shown_number` writes it — digits only, nothing that sounds alike, in groups of
  four from the right as Chinese count (万): ``2048``, ``12-0457``.

``(short_number, street_id)`` is unique in the database. The next short number is one upsert
on the street's :class:`~models.Counter` row in the filing transaction: two reports at once
queue on that row (its lock on PostgreSQL, the single writer on SQLite) and never share a
number. ``/ticket <number>`` and 重复 (duplicate of …) accept either number
(:func:`parse_number`).
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput
from bot.i18n import N_
from models import Counter, Grid, Ticket

GROUP = 4  # digits per group, from the right: 万 in Chinese
MAX_SHORT_DIGITS = 12  # far beyond any street's tickets; a longer run of digits is no number
MAX_SHOWN_INPUT = 40  # what of a bad argument the answer repeats

NOT_A_NUMBER = N_(
    "{value} is not a ticket number. A ticket number is the number on its card, like 2048."
)
NO_NUMBER = N_("Which ticket? Send /ticket with its number, like /ticket 2048.")

_LONG = re.compile(r"[0-9A-Z]{1,32}-[0-9]{8}-[0-9]{3,6}")
_SHORT = re.compile(r"[0-9]+(?:[- ][0-9]+)*")
_PREFIXES = ("#", "№", "NO.", "NO ", "工单", "工單", "TICKET")


def counter_name(street_id: int) -> str:
    """The :class:`~models.Counter` row that holds a street's last short number."""
    return f"ticket-short:{street_id}"


def street_id_of(grid: Grid) -> int:
    """The id of the street (the top of ``grid``'s tree: the first id on its path)."""
    first = grid.path.strip("/").split("/", 1)[0]
    if first.isdigit():
        return int(first)
    assert grid.id is not None
    return grid.id


async def next_short_number(session: AsyncSession, street_id: int) -> int:
    """The street's next short number, bumped in the caller's transaction."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(Counter)
        .values(name=counter_name(street_id), value=1)
        .on_conflict_do_update(index_elements=["name"], set_={"value": Counter.value + 1})
        .returning(col(Counter.value))
    )
    value: int = (await session.exec(statement)).scalar_one()
    return value


def spoken(short_number: int) -> str:
    """``2048``; ``12-0457`` (groups of four digits from the right)."""
    digits = str(short_number)
    head = len(digits) % GROUP or GROUP
    groups = [digits[:head]] + [digits[i : i + GROUP] for i in range(head, len(digits), GROUP)]
    return "-".join(groups)


def shown_number(ticket: Ticket) -> str:
    """A ticket's number wherever a person reads it: its short number, :func:`spoken`."""
    return spoken(ticket.short_number)


def parse_number(text: str | None) -> str | int:
    """What a person typed for a ticket: the long number (a ``str``) or the short one (an
    ``int``). Forgives full-width characters, spaces, a leading ``#``/``№``/``工单``, and
    the groups of a short number typed with or without their ``-``.

    Raises :class:`InvalidInput` (with the text repeated, cut short) for anything else.
    """
    cleaned = unicodedata.normalize("NFKC", text or "").strip().upper()
    if not cleaned:
        raise InvalidInput(NO_NUMBER)
    for prefix in _PREFIXES:
        if cleaned.startswith(prefix):
            cleaned = cleaned[len(prefix) :].strip()
            break
    if _LONG.fullmatch(cleaned):
        return cleaned
    if _SHORT.fullmatch(cleaned):
        digits = cleaned.replace("-", "").replace(" ", "")
        if len(digits.lstrip("0")) <= MAX_SHORT_DIGITS and int(digits) > 0:
            return int(digits)
    shown = "".join(ch for ch in (text or "").strip() if ch.isprintable())
    if len(shown) > MAX_SHOWN_INPUT:
        shown = shown[: MAX_SHOWN_INPUT - 1] + "…"
    raise InvalidInput(NOT_A_NUMBER, value=shown)


async def tickets_numbered(
    session: AsyncSession, wanted: str | int, *, limit: int = 20
) -> list[Ticket]:
    """The tickets with that long number (one at most) or that short number (one per street
    at most), oldest first."""
    if isinstance(wanted, str):
        condition = col(Ticket.number) == wanted
    else:
        condition = col(Ticket.short_number) == wanted
    return list(
        (
            await session.exec(
                select(Ticket).where(condition).order_by(col(Ticket.id)).limit(limit)
            )
        ).all()
    )
