"""A typed address is matched against the households' keys in SQL exactly as the comparison
in Python did it, hostile text included: SQL wildcards, backslashes and quotes are plain
characters, zero-width characters are kept (and so match only themselves), full-width digits
fold, a number is never cut in two, and an address that normalisation blows up is kept out."""

from __future__ import annotations

import importlib.util
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import String, literal
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import migrate
from bot.clock import FrozenClock
from bot.services.addresses import (
    KEY_LENGTH,
    address_key,
    keys_match,
    match_key,
    matching,
    names_a_place,
    names_same_place,
    normalize_address,
)
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.notice_board import resident_grid
from bot.services.tickets import PlacedBy, place_report
from bot.services.tickets.concerned import grid_at_tier
from models import Grid, Household, Person

ROOT = Path(__file__).resolve().parents[2]
BLOWN_UP = "ﷺ" * 60  # NFKC makes each of these 18 characters: the key would pass KEY_LENGTH

# (grid "a" or "b", registered address) beside the demo's households
REGISTERED = [
    ("a", "百分%广场1号"),
    ("a", "下划_线花园2栋"),
    ("a", "零宽\u200b小区1号"),
    ("a", "测试苑13栋1单元101"),
    ("a", "阿拉伯路٣٣号"),
    ("a", "反斜\\杠里5号"),
    ("a", "引号'街\"8号"),
    ("a", "同名小区2号"),
    ("a", BLOWN_UP + "1号"),
    ("b", "测试苑3栋1单元101"),
    ("b", "同名小区1号"),
    ("b", "(括号)大院7号"),
]
TYPED = [
    "%",
    "%%%",
    "百分%广场",
    "百分x广场",  # % is no wildcard
    "百分%广场1号门口",
    "百分广场1号",
    "_",
    "下划_线花园",
    "下划x线花园",  # nor is _
    "下划线花园2栋",  # the registered _ is punctuation: gone from both
    "\\",
    "反斜\\杠里",
    "反斜杠里5号",
    "引号'街\"8号",
    "'; DROP TABLE household; --",
    "零宽\u200b小区",
    "零宽小区",  # a zero-width character is kept: it tells the two apart
    "\u200b\u200b\u200b",
    "测试苑3栋",  # 3栋 is not 13栋
    "测试苑13栋",
    "测试苑１３栋",  # full-width digits fold
    "测试苑３幢",
    "阿拉伯路٣",  # a number in another script is a number too: not cut in two
    "阿拉伯路٣٣",
    "同名小区",  # households of two grids: no single grid
    "(括号)大院",
    "括号大院7",
    "[括号]{大院}",
    "ﷺ" * 3,
    BLOWN_UP,
    "测试苑3栋1单元101" * 30,  # long: nothing holds it, and it holds nothing once
    "前缀" * 120 + "测试苑3栋1单元101号" + "后缀" * 120,  # very long, holding one address
    "x" * 5_000,
    "5号楼2单元",
]


def reference(typed: str, households: list[tuple[int, str]]) -> int | None:
    """The grid the comparison in Python chose (before the keys): every household compared —
    but one whose address normalisation blew up past KEY_LENGTH, which is never matched now."""
    normalised = normalize_address(typed)
    if not names_a_place(normalised):
        return None
    grids = {
        grid_id
        for grid_id, registered in households
        if address_key(registered) and names_same_place(normalised, normalize_address(registered))
    }
    return grids.pop() if len(grids) == 1 else None


async def test_hostile_addresses_are_placed_as_python_placed_them(
    session: AsyncSession, clock: FrozenClock
) -> None:
    now = clock.now()
    await load_demo_data(session, now)
    demo = (await session.exec(select(Household.address, Household.address_key))).all()
    assert demo and all(key == address_key(address) for address, key in demo)
    person = (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS["resident"]))
    ).one()
    assert person.id is not None
    home = await resident_grid(session, person.id)
    assert home is not None
    street = await grid_at_tier(session, home, 0)
    lowest = (
        await session.exec(
            select(Grid)
            .where(col(Grid.path).startswith(street.path), Grid.tier == 3, Grid.id != home.id)
            .order_by(col(Grid.code))
        )
    ).all()
    grids = {"a": lowest[0], "b": lowest[-1]}
    for n, (which, address) in enumerate(REGISTERED):
        session.add(
            Household(
                code=f"ADDR{n:03d}",
                grid_id=grids[which].id or 0,
                address=address,
                address_key=address_key(address),
                head_name="测试",
                created_at=now,
                updated_at=now,
            )
        )
    await session.flush()
    households = [
        (grid_id, address)
        for grid_id, address in (
            await session.exec(
                select(Household.grid_id, Household.address)
                .join(Grid, col(Grid.id) == Household.grid_id)
                .where(col(Grid.path).startswith(street.path))
            )
        ).all()
    ]
    placed_somewhere = 0
    for typed in TYPED:
        expected = reference(typed, households)
        placed = await place_report(session, home=home, address=typed)
        if expected is None:
            assert (placed.by, placed.grid.id) == (PlacedBy.REPORTER, home.id), typed
        else:
            placed_somewhere += 1
            assert (placed.by, placed.grid.id) == (PlacedBy.ADDRESS, expected), typed
    assert placed_somewhere >= 10  # the cases do test matching, not only refusing


def test_an_address_that_normalisation_blows_up_is_never_matched() -> None:
    assert len(match_key(normalize_address(BLOWN_UP))) > KEY_LENGTH
    assert address_key(BLOWN_UP) == ""
    assert not keys_match(match_key(normalize_address("ﷺ" * 3)), "")


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("杏东花园 3号楼 1单元 101室", "杏东花园(3)栋(1)单元(101)"),
        ("幸福路１２号", "幸福路(12)号"),
        ("百分%广场", "百分%广场"),
        ("(括号)[大院]", "括号大院"),
        ("", ""),
    ],
)
def test_keys_put_each_number_in_brackets(address: str, key: str) -> None:
    assert address_key(address) == key


ALPHABET = "0123456789٣²幸福路栋号单元a%_\u200b"


@given(st.text(ALPHABET, max_size=12), st.text(ALPHABET, max_size=12))
def test_keys_match_as_names_same_place(typed: str, registered: str) -> None:
    assert keys_match(match_key(typed), match_key(registered)) == names_same_place(
        typed, registered
    )


PAIRS = [
    (typed, registered)
    for typed in ["百分%广场", "下划_线", "反斜\\杠", "测试苑3栋", "3栋1单元", "同名小区", "%%%"]
    for registered in [
        "百分%广场1号",
        "百分x广场1号",
        "下划x线1号",
        "反斜\\杠里",
        "测试苑13栋1单元101",
        "测试苑3栋",
        "同名小区",
        "x%y",
        "",
    ]
]


async def test_the_sql_test_is_keys_match(session: AsyncSession) -> None:
    """:func:`matching` in the database answers as :func:`keys_match` in Python."""
    for typed, registered in PAIRS:
        typed_key, stored = match_key(normalize_address(typed)), address_key(registered)
        found = (await session.exec(select(matching(literal(stored, String()), typed_key)))).one()
        assert bool(found) is keys_match(typed_key, stored), (typed, registered)


def test_the_migration_keys_existing_households(tmp_path: Path) -> None:
    """0021 fills the key of every household already there, as the application would."""
    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade(url, "0020")
    addresses = [address for _, address in REGISTERED] + ["杏东花园 3号楼 1单元 101室"] * 2_100
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(
            "INSERT INTO grid (id, code, name, tier, path, created_at) "
            "VALUES (1, '350211001', 'x', 0, '/1/', '2026-12-01 00:00:00')"
        )
        connection.executemany(
            "INSERT INTO household (code, grid_id, address, head_name, members, categories, "
            "is_key, is_business, created_at, updated_at) "
            "VALUES (?, 1, ?, 'x', 1, 0, 0, 0, '2026-12-01 00:00:00', '2026-12-01 00:00:00')",
            [(f"H{n}", address) for n, address in enumerate(addresses)],
        )
    migrate.upgrade(url)
    with closing(sqlite3.connect(path)) as connection:
        rows = connection.execute("SELECT address, address_key FROM household").fetchall()
    assert len(rows) == len(addresses)
    assert all(key == address_key(address) for address, key in rows)
    spec = importlib.util.spec_from_file_location(
        "migration_0021", ROOT / "migrations" / "versions" / "0021_household_address_key.py"
    )
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert all(migration.address_key(t) == address_key(t) for t in TYPED + addresses[:20])
