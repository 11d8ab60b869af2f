"""Place types as a validated file, and the register of places: import (CSV in GBK and UTF-8,
XLSX; all or nothing; every bad row named), export with masked phones, and hostile files."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import InvalidInput, NotAllowed
from bot.i18n import gettext_for
from bot.services import place_policy, places
from bot.services.imports import GRID_OUT_OF_SCOPE, NO_GRID
from bot.services.place_policy import DEFAULT_POLICY, parse_policy, policy_to_json
from models import Place
from tests.services.test_imports import (
    EAST_A,
    EAST_B,
    WEST_A,
    Community,
    build_community,
    to_csv,
    to_xlsx,
)

HEADER = ["场所编号", "场所名称", "场所类型", "网格编码", "地址", "负责人", "联系电话", "备注"]


def place(n: int, kind: str = "九小场所", grid: str = EAST_A, **changes: str) -> list[str]:
    values = {
        "code": f"P{n:04d}",
        "name": f"场所{n}",
        "type": kind,
        "grid_code": grid,
        "address": f"杏林路{n}号",
        "responsible": f"店主{n}",
        "phone": f"1371234{n:04d}",
        "note": "",
    }
    values.update(changes)
    return list(values.values())


def default_file() -> dict[str, Any]:
    return copy.deepcopy(policy_to_json(DEFAULT_POLICY))


def refusal(data: Any) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_policy(json.dumps(data, ensure_ascii=False))
    return gettext_for("zh_Hans", caught.value.message, **caught.value.params)


# --- the place-types file ---------------------------------------------------------------------


def test_the_default_file_reads_back_to_the_defaults() -> None:
    assert parse_policy(json.dumps(default_file())) == DEFAULT_POLICY
    kinds = {t.key for t in DEFAULT_POLICY.types}
    assert {"small_venue", "rental", "key_unit", "pharmacy", "enterprise", "common_area"} == kinds
    patrol = DEFAULT_POLICY.type("common_area")
    assert patrol is not None and patrol.cadence_of("department") is not None
    cadence = patrol.cadence_of("department")
    assert cadence is not None and cadence.interval.total_seconds() == 12 * 3600  # 每天两次


def test_a_cadence_of_zero_is_refused_in_chinese() -> None:
    data = default_file()
    data["types"][0]["cadence"][0]["days"] = 0
    text = refusal(data)
    assert "九小场所" in text and "days" in text and "0" in text
    assert "整数" in text


def test_a_checklist_of_200_items_is_refused() -> None:
    data = default_file()
    data["types"][1]["checklist"] = [
        {"key": f"item_{i}", "text": f"检查项{i}", "severity": "minor"} for i in range(200)
    ]
    text = refusal(data)
    assert "出租房屋" in text and "200" in text and "40" in text


def test_duplicate_item_keys_are_refused() -> None:
    data = default_file()
    items = data["types"][3]["checklist"]
    items.append(dict(items[0]))
    text = refusal(data)
    assert "涉药单位" in text and items[0]["text"][:20] in text


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d["types"].append(copy.deepcopy(d["types"][0])), "九小场所"),
        (lambda d: d["types"][0]["cadence"][0].update(by="mayor"), "mayor"),
        (lambda d: d["types"][0]["cadence"][0].update(times=True), "times"),
        (lambda d: d["types"][0].update(cadence=[{"by": "center", "days": 90}]), "九小场所"),
        (lambda d: d["types"][0]["checklist"][0].update(severity="fatal"), "fatal"),
        (lambda d: d["types"][0]["checklist"][0].update(key="Exits Clear"), "Exits Clear"),
        (lambda d: d["types"][0]["checklist"][0].update(text=""), "text"),
        (lambda d: d["types"][0].update(colour="red"), "colour"),
        (lambda d: d["fix_days"].update(minor=-3), "minor"),
        (lambda d: d.update(types=[]), "types"),
        (lambda d: d.update(version=2), "第 1 版"),
    ],
)
def test_a_bad_place_types_file_says_what_is_wrong(change: Any, needle: str) -> None:
    data = default_file()
    change(data)
    assert needle in refusal(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_bytes_are_read_or_refused_cleanly(raw: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        parse_policy(raw)


def test_a_file_too_large_or_not_utf8_is_refused() -> None:
    with pytest.raises(InvalidInput):
        parse_policy(b"\xff\xfe\x00" * 10)
    with pytest.raises(InvalidInput):
        parse_policy(b" " * (place_policy.MAX_POLICY_BYTES + 1))


async def test_only_an_admin_of_the_street_sets_place_types(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    data = default_file()
    data["fix_days"]["minor"] = 10
    raw = json.dumps(data)
    with pytest.raises(NotAllowed):
        await place_policy.set_policy(
            session,
            actor=community.east_admin,
            roles=await community.roles(session, community.east_admin),
            raw=raw,
            now=community.now,
        )
    await place_policy.set_policy(
        session,
        actor=community.admin,
        roles=await community.roles(session, community.admin),
        raw=raw,
        now=community.now,
    )
    assert (await place_policy.current_policy(session)).fix_days["minor"] == 10


async def test_a_new_cadence_or_a_new_type_moves_the_next_due_dates(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    assert (await run(session, community, to_csv([place(1), place(2)], HEADER).encode())).ok
    first, second = (await session.exec(select(Place).order_by(col(Place.code)))).all()
    inspected = community.now - timedelta(days=3)
    first.last_inspected_at = inspected
    session.add(first)
    await session.flush()
    data = default_file()
    small = next(t for t in data["types"] if t["key"] == "small_venue")
    small["cadence"] = [{"by": "worker", "days": 14, "times": 1}]
    await place_policy.set_policy(
        session,
        actor=community.admin,
        roles=await community.roles(session, community.admin),
        raw=json.dumps(data),
        now=community.now,
    )
    await session.refresh(first)
    await session.refresh(second)
    assert first.next_due_at == inspected + timedelta(days=14)
    assert second.next_due_at == second.created_at  # never inspected: due since added
    # the sheet again, the first place now a key unit (重点单位: weekly)
    again = to_csv([place(1, "重点单位"), place(2)], HEADER).encode()
    assert (await run(session, community, again)).ok
    await session.refresh(first)
    assert first.next_due_at == inspected + timedelta(days=7)


async def test_a_type_in_use_cannot_be_dropped(session: AsyncSession, clock: FrozenClock) -> None:
    community = await build_community(session, clock.now())
    report = await run(session, community, to_csv([place(1)], HEADER).encode())
    assert report.ok
    data = default_file()
    data["types"] = [t for t in data["types"] if t["key"] != "small_venue"]
    with pytest.raises(InvalidInput):
        await place_policy.set_policy(
            session,
            actor=community.admin,
            roles=await community.roles(session, community.admin),
            raw=json.dumps(data),
            now=community.now,
        )


# --- importing places -------------------------------------------------------------------------


async def run(
    session: AsyncSession, community: Community, data: bytes, who: Any = None
) -> places.ImportReport:
    actor = who or community.admin
    return await places.import_places(
        session, actor, await community.roles(session, actor), data, now=community.now
    )


async def test_twenty_places_of_three_types_import_from_gbk_utf8_and_xlsx(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    kinds = ["九小场所", "涉药单位", "key_unit"]
    rows = [place(n, kinds[n % 3], EAST_A if n % 2 else EAST_B) for n in range(20)]
    report = await run(session, community, to_csv(rows, HEADER).encode("gbk"))
    assert (report.created, report.updated, report.unchanged) == (20, 0, 0)
    stored = {p.code: p for p in await session.exec(select(Place))}
    assert {p.type_key for p in stored.values()} == {"small_venue", "pharmacy", "key_unit"}
    assert stored["P0001"].responsible_phone == "+8613712340001"
    again = await run(session, community, to_xlsx(rows, HEADER))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 20)
    rows[3][1] = "新名字"
    changed = await run(session, community, to_csv(rows, HEADER).encode("utf-8-sig"))
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 19)


async def test_unknown_types_and_grids_are_refused_row_by_row_in_chinese(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    rows = [
        place(1),
        place(2, "网吧"),
        place(3, grid="3502110019999999"),
        place(4, phone="12345"),
        place(5, grid=WEST_A),
        place(1, name="重复"),
    ]
    report = await run(session, community, to_csv(rows, HEADER).encode(), community.east_admin)
    assert not report.ok
    assert report.bad_rows == (3, 4, 5, 6, 7)
    lines = [e.render("zh_Hans") for e in report.errors]
    assert any("第 3 行" in line and "网吧" in line and "九小场所" in line for line in lines), (
        lines
    )
    by_reason = {e.reason for e in report.errors}
    assert NO_GRID in by_reason and GRID_OUT_OF_SCOPE in by_reason
    assert (await session.exec(select(Place))).first() is None  # all or nothing


async def test_a_worker_cannot_import_places(session: AsyncSession, clock: FrozenClock) -> None:
    community = await build_community(session, clock.now())
    worker = next(iter(community.workers.values()))
    with pytest.raises(NotAllowed):
        await run(session, community, to_csv([place(1)], HEADER).encode(), worker)


async def test_the_place_ledger_covers_the_askers_grids_and_reads_back(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    rows = [place(7), place(8, grid=WEST_A)]
    assert (await run(session, community, to_csv(rows, HEADER).encode())).ok
    translate = lambda m: gettext_for("zh_Hans", m)  # noqa: E731
    for who, codes in ((community.admin, {"P0007", "P0008"}), (community.head, {"P0007"})):
        data = await places.export_places(
            session,
            who,
            await community.roles(session, who),
            now=community.now,
            translate=translate,
        )
        sheet = load_workbook(io.BytesIO(data)).active
        assert sheet is not None
        lines = [[c.value for c in r] for r in list(sheet.iter_rows())[1:]]
        assert {line[0] for line in lines} == codes
        assert lines[0][:4] == ["P0007", "场所7", "九小场所", EAST_A]
        assert "13712340007" in lines[0]
    data = await places.export_places(
        session,
        community.admin,
        await community.roles(session, community.admin),
        now=community.now,
        translate=translate,
    )
    again = await run(session, community, data)
    assert again.ok and again.unchanged == 2


def test_a_phone_shown_in_the_chat_is_masked() -> None:
    assert places.masked_phone("+8613712340007") == "137****0007"
    assert places.masked_phone(None) == "***"
