"""The persons register (实有人口) for the city-size benchmarks: three people a household.

:func:`member_rows` makes ``household_member`` rows as the driver takes them, for
``executemany`` (see :func:`bench.quota_engine.bulk_insert`): a head, a spouse or parent and
a child per household, 户籍 / 常住 / 流动 mixed as a city has them, one in fifty moved out.

ID numbers are what the bot keeps, not plain text: every person gets a distinct, valid
18-digit number and its keyed hash (``id_hash`` is unique, as in production), but sealing
900,000 numbers with Fernet takes minutes (~0.2 ms each), so only ``CIPHER_POOL`` numbers are
sealed and their tokens are shared round-robin. The ``id_cipher`` column thus holds real
Fernet tokens of the right size, which is all a query reads; a token does not decrypt to its
own row's number (no benchmark decrypts them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.services.id_numbers import IdVault, new_key, with_check_digit

PER_HOUSEHOLD = 3
CIPHER_POOL = 4_096
REGION = "350211"  # 厦门市湖里区
BORN_FROM = date(1940, 1, 1)
DAYS = 30_000  # birth dates over ~82 years; the sequence digits keep numbers apart
MEMBER_COLUMNS = [
    "household_id",
    "name",
    "relation",
    "gender",
    "birth_date",
    "id_cipher",
    "id_hash",
    "phone",
    "status",
    "moved_in",
    "moved_out",
    "created_at",
    "updated_at",
]
RELATIONS = ("head", "spouse", "child")
STATUSES = ("registered",) * 6 + ("resident",) * 2 + ("floating",) * 2  # 60 / 20 / 20 %


def id_number(person: int) -> tuple[str, date]:
    """A distinct valid number for the ``person``-th person, and the birth date in it."""
    born = BORN_FROM + timedelta(days=person % DAYS)
    sequence = person // DAYS % 1000  # 30,000,000 people before a number repeats
    return with_check_digit(f"{REGION}{born:%Y%m%d}{sequence:03d}"), born


def member_rows(
    household_ids: Sequence[int],
    created: datetime,
    *,
    sqlite: bool,
    per_household: int = PER_HOUSEHOLD,
    vault: IdVault | None = None,
) -> Iterator[tuple[Any, ...]]:
    """``per_household`` people for each household, in ``MEMBER_COLUMNS`` order."""
    vault = vault or IdVault(new_key())
    sealed = min(CIPHER_POOL, len(household_ids) * per_household)
    pool = [vault.seal(id_number(n)[0]).cipher for n in range(sealed)]
    day: Callable[[date], Any] = date.isoformat if sqlite else _same
    stamp: Any = (
        created.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        if sqlite
        else created
    )
    moved_in = day(date(2015, 6, 1))
    moved_out = day(date(2025, 9, 1))
    person = 0
    for household_id in household_ids:
        for k in range(per_household):
            number, born = id_number(person)
            yield (
                household_id,
                f"居民{person}",
                RELATIONS[k % len(RELATIONS)],
                "male" if int(number[16]) % 2 else "female",
                day(born),
                pool[person % sealed],
                vault.digest(number),
                f"+8615{person:09d}" if k == 0 else None,
                STATUSES[person % len(STATUSES)],
                moved_in,
                moved_out if person % 50 == 49 else None,
                stamp,
                stamp,
            )
            person += 1


def _same(value: date) -> date:
    return value
