"""The persons the city-size benchmarks load (bench/people.py): what a query reads is real."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bench import people
from bot.services.id_numbers import IdVault, new_key, parse_id_number

CREATED = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)


def test_three_persons_a_household_with_distinct_valid_numbers_and_sealed_tokens() -> None:
    vault = IdVault(new_key())
    rows = list(people.member_rows([7, 8, 9], CREATED, sqlite=False, vault=vault))
    assert len(rows) == 9
    column = {name: i for i, name in enumerate(people.MEMBER_COLUMNS)}
    assert [r[column["household_id"]] for r in rows] == [7, 7, 7, 8, 8, 8, 9, 9, 9]
    numbers = [people.id_number(n)[0] for n in range(9)]
    for number in numbers:
        assert parse_id_number(number, today=date(2026, 1, 1)) == number
    assert [r[column["id_hash"]] for r in rows] == [vault.digest(n) for n in numbers]
    assert len({r[column["id_hash"]] for r in rows}) == 9  # id_hash is unique in the table
    assert vault.open(rows[0][column["id_cipher"]]) == numbers[0]  # a real token


def test_numbers_stay_distinct_past_the_birth_date_range() -> None:
    numbers = {people.id_number(n)[0] for n in range(0, 3 * people.DAYS, 997)}
    assert len(numbers) == len(range(0, 3 * people.DAYS, 997))


def test_sqlite_rows_carry_dates_as_text() -> None:
    (row,) = people.member_rows([1], CREATED, sqlite=True, per_household=1)
    column = {name: i for i, name in enumerate(people.MEMBER_COLUMNS)}
    assert row[column["birth_date"]] == "1940-01-01"
    assert row[column["created_at"]] == "2026-01-01 01:00:00.000000"
