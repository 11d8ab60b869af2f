"""A sample community for demos and the sandbox (``gridbot demo-data``).

杏林街道 (modelled on 方案8): one street centre (综合调处中心), three communities, nine tier-2
and twenty-seven tier-3 grids, about 700 households (20–30 per tier-3 grid, 方案1 §1) with the
six categories (六类户) in plausible shares, and the people who serve them: a worker (网格员) per
tier-3 grid, a head (网格长) per tier-2 grid and community, a centre operator, an admin,
a supervisor, five departments (职能部门) and one resident (居民) per tier-3 grid. Every grid
has a boundary on the map (网格边界): rectangles in Xiamen's Jimei district, about 118.030–
118.057°E, 24.565–24.577°N (WGS-84), the communities side by side from west to east, their
tier-2 grids from north to south, each tier-2 grid's three tier-3 grids from west to east.

Two steps: :func:`build_demo_community` is a pure function of the seed that describes the
data; :func:`load_demo_data` writes that description into an empty database. The same seed
always gives the same community. Telegram ids do not depend on the seed at all, so the sandbox
and the end-to-end tests can log in as the named :data:`DEMO_PERSONAS`.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import (
    Grid,
    GridBoundary,
    Household,
    HouseholdCategory,
    Person,
    Place,
    Role,
    RoleAssignment,
)
from models.registry import Department

from .addresses import address_key
from .boundaries import new_version
from .grid_codes import child_code, parent_of, validate_code
from .id_numbers import IdVault

DISTRICT_CODE = "350211"  # 集美区, 厦门市 (where a 杏林街道 lies); the street number is made up
STREET_INDEX = 1
STREET_NAME = "杏林街道"
AREA_PHONE = "0592"  # 厦门 area code, for the landlines on the notice boards
# the map: the south-west corner of the street, and the size of a tier-3 grid, in millionths of
# a degree (integers, so that neighbours share their edges exactly)
MAP_WEST, MAP_SOUTH = 118_030_000, 24_565_000
TIER3_WIDTH, TIER3_HEIGHT = 3_000, 4_000  # about 300 m by 440 m

TELEGRAM_ID_BASE = 7_000_000_000  # demo people are 7_000_000_001..7_000_000_999 (sandbox users)
_ADMIN, _CENTER, _SUPERVISOR = 1, 2, 3
_DEPARTMENTS = 11  # + 0..4
_COMMUNITY_HEADS = 101  # + community number - 1
_TIER2_HEADS = 201  # + tier-2 grid number - 1
_WORKERS = 301  # + tier-3 grid number - 1
_RESIDENTS = 401  # + tier-3 grid number - 1

DEMO_PERSONAS: dict[str, int] = {
    # resident of the first tier-3 grid; its worker; the tier-2 head and community head above
    "resident": TELEGRAM_ID_BASE + _RESIDENTS,
    "worker": TELEGRAM_ID_BASE + _WORKERS,
    "head": TELEGRAM_ID_BASE + _TIER2_HEADS,
    "community_head": TELEGRAM_ID_BASE + _COMMUNITY_HEADS,
    "center": TELEGRAM_ID_BASE + _CENTER,
    "admin": TELEGRAM_ID_BASE + _ADMIN,
    "supervisor": TELEGRAM_ID_BASE + _SUPERVISOR,
    "department": TELEGRAM_ID_BASE + _DEPARTMENTS,  # the police station (派出所)
    # a neighbour: the second tier-3 grid, same tier-2 grid and head, another worker
    "other_resident": TELEGRAM_ID_BASE + _RESIDENTS + 1,
    "other_worker": TELEGRAM_ID_BASE + _WORKERS + 1,
}
"""Telegram ids of named demo people, the same for every seed."""

MIN_HOUSEHOLDS, MAX_HOUSEHOLDS = 22, 30  # per tier-3 grid (方案1: 20–30)
BUSINESS_SHARE = 0.03  # 工商企业户
CATEGORY_SHARES: dict[HouseholdCategory, float] = {  # of the residential households
    HouseholdCategory.SUBSISTENCE: 0.04,  # 低保五保户
    HouseholdCategory.ILLNESS_DISABILITY: 0.05,  # 重病重残户
    HouseholdCategory.POVERTY_RISK: 0.02,  # 易返贫致贫户
    HouseholdCategory.EMPTY_NEST: 0.10,  # 空巢老人户
    HouseholdCategory.LEFT_BEHIND_CHILDREN: 0.04,  # 留守儿童户
    HouseholdCategory.MILITARY_MARTYR: 0.015,  # 烈属军属户
}


class DemoDataExists(Exception):
    """The database already holds grids; demo data goes only into an empty one."""


@dataclass(frozen=True)
class DemoSummary:
    """What was loaded: rows of grids, households, people and departments."""

    grids: int
    households: int
    people: int
    departments: int = 0
    members: int = 0  # people registered in the households (实有人口)


@dataclass(frozen=True)
class DemoGrid:
    code: str
    name: str
    tier: int
    parent_code: str | None
    area_desc: str
    services: str
    complaint_process: str
    complaint_phone: str
    bounds: tuple[float, float, float, float]  # west, south, east, north (WGS-84 degrees)


@dataclass(frozen=True)
class DemoHousehold:
    code: str
    grid_code: str  # a tier-3 grid; its worker serves the household
    address: str
    head_name: str
    phone: str
    members: int
    categories: int  # HouseholdCategory flags
    is_business: bool
    note: str | None = None

    @property
    def is_key(self) -> bool:
        return self.categories != 0


@dataclass(frozen=True)
class DemoDepartment:
    code: str  # a stable name for routing rules: police, fire, property ...
    name: str
    grid_code: str  # the area it serves
    phone: str


@dataclass(frozen=True)
class DemoPerson:
    telegram_id: int
    name: str
    phone: str
    role: Role
    grid_code: str
    household_code: str | None = None  # residents only
    department_code: str | None = None  # department people only


@dataclass(frozen=True)
class DemoPlace:
    """A place inspected on a cadence (场所), of one of the default place types."""

    code: str
    name: str
    type_key: str
    grid_code: str
    address: str
    responsible_name: str
    responsible_phone: str


@dataclass(frozen=True)
class DemoCommunity:
    """Everything the demo loads, in insertion order (grids parents first)."""

    grids: tuple[DemoGrid, ...]
    departments: tuple[DemoDepartment, ...]
    households: tuple[DemoHousehold, ...]
    people: tuple[DemoPerson, ...]
    places: tuple[DemoPlace, ...] = ()


async def load_demo_data(
    session: AsyncSession, now: datetime, seed: int = 2026, *, vault: IdVault | None = None
) -> DemoSummary:
    """Load the sample community into an empty database; the caller commits.

    Raises DemoDataExists if any grid is there already. ``now`` stamps every row. With a
    ``vault`` (the ID-number key), the households' people are registered too.
    """
    if (await session.exec(select(Grid).limit(1))).first() is not None:
        raise DemoDataExists("the database already holds grids")
    summary = await _insert(session, build_demo_community(seed), now)
    if vault is None:
        return summary
    from .demo_members import load_demo_members  # it reads this module's names
    from .demo_party import load_demo_party
    from .demo_rentals import load_demo_rentals
    from .demo_tags import load_demo_tags  # tags need the people registered

    members = await load_demo_members(session, vault, now, seed)
    await load_demo_party(session, now, seed)  # party members and contact households
    tenants = await load_demo_rentals(session, vault, now, seed=seed)  # rental houses
    await load_demo_tags(session, now, seed)
    return dataclasses.replace(summary, members=members + tenants)


async def _insert(session: AsyncSession, community: DemoCommunity, now: datetime) -> DemoSummary:
    """Write a described community: eight flushes, whatever its size."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    grids: dict[str, Grid] = {}
    for tier in sorted({g.tier for g in community.grids}):
        specs = [g for g in community.grids if g.tier == tier]
        level = [
            Grid(
                code=g.code,
                name=g.name,
                tier=g.tier,
                parent_id=None if g.parent_code is None else grids[g.parent_code].id,
                area_desc=g.area_desc,
                services=g.services,
                complaint_process=g.complaint_process,
                complaint_phone=g.complaint_phone,
                created_at=now,
            )
            for g in specs
        ]
        session.add_all(level)
        await session.flush()
        for grid, spec in zip(level, specs, strict=True):
            parent_path = "/" if spec.parent_code is None else grids[spec.parent_code].path
            grid.path = f"{parent_path}{grid.id}/"
            grids[spec.code] = grid
    session.add_all(
        GridBoundary(grid_id=_id(grids[g.code]), geometry=_rectangle(g.bounds), loaded_at=now)
        for g in community.grids
    )
    await new_version(session)

    def person(spec: DemoPerson, household_id: int | None = None) -> Person:
        return Person(
            telegram_id=spec.telegram_id,
            name=spec.name,
            phone=spec.phone,
            household_id=household_id,
            created_at=now,
            updated_at=now,
        )

    departments = {
        d.code: Department(
            code=d.code,
            name=d.name,
            grid_id=_id(grids[d.grid_code]),
            phone=d.phone,
            created_at=now,
        )
        for d in community.departments
    }
    staff_specs = [p for p in community.people if p.household_code is None]
    staff = [person(p) for p in staff_specs]
    session.add_all([*departments.values(), *staff])
    await session.flush()
    worker_of_grid = {
        spec.grid_code: row.id
        for spec, row in zip(staff_specs, staff, strict=True)
        if spec.role is Role.WORKER
    }

    households = {
        h.code: Household(
            code=h.code,
            grid_id=_id(grids[h.grid_code]),
            worker_id=worker_of_grid[h.grid_code],
            address=h.address,
            address_key=address_key(h.address),
            head_name=h.head_name,
            phone=h.phone,
            members=h.members,
            categories=h.categories,
            is_key=h.is_key,
            is_business=h.is_business,
            note=h.note,
            created_at=now,
            updated_at=now,
        )
        for h in community.households
    }
    session.add_all(households.values())
    await session.flush()

    session.add_all(
        Place(
            code=p.code,
            name=p.name,
            type_key=p.type_key,
            grid_id=_id(grids[p.grid_code]),
            address=p.address,
            responsible_name=p.responsible_name,
            responsible_phone=p.responsible_phone,
            next_due_at=now,  # never inspected: due from when it was added
            created_at=now,
            updated_at=now,
        )
        for p in community.places
    )
    resident_specs = [p for p in community.people if p.household_code is not None]
    residents = [
        person(p, _id(households[p.household_code]))
        for p in resident_specs
        if p.household_code is not None
    ]
    session.add_all(residents)
    await session.flush()

    session.add_all(
        RoleAssignment(
            person_id=_id(row),
            role=spec.role,
            grid_id=_id(grids[spec.grid_code]),
            department_id=(
                None if spec.department_code is None else _id(departments[spec.department_code])
            ),
            created_at=now,
        )
        for spec, row in zip([*staff_specs, *resident_specs], [*staff, *residents], strict=True)
    )
    await session.flush()
    return DemoSummary(
        grids=len(grids),
        households=len(households),
        people=len(staff) + len(residents),
        departments=len(departments),
    )


def _rectangle(bounds: tuple[float, float, float, float]) -> str:
    """A GeoJSON polygon, as :mod:`bot.services.boundaries` stores it."""
    west, south, east, north = bounds
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return json.dumps({"type": "Polygon", "coordinates": [ring]}, separators=(",", ":"))


def _bounds(west: int, south: int, east: int, north: int) -> tuple[float, float, float, float]:
    return west / 1e6, south / 1e6, east / 1e6, north / 1e6


def _id(row: Grid | Department | Household | Person) -> int:
    assert row.id is not None, "flushed rows have ids"
    return row.id


# --- the description --------------------------------------------------------------------------

BUILDINGS, STREET, VILLAGE = "buildings", "street", "village"

# community -> (place, kind) of its three tier-2 grids; each tier-2 grid has three tier-3 grids
LAYOUT: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("杏东社区", (("杏东花园", BUILDINGS), ("杏滨小区", BUILDINGS), ("杏东路", STREET))),
    ("杏西社区", (("杏西新村", BUILDINGS), ("西亭苑", BUILDINGS), ("杏西路", STREET))),
    ("锦园社区", (("锦园小区", BUILDINGS), ("后埔里", VILLAGE), ("西滨里", VILLAGE))),
)
TIER3_PER_TIER2 = 3


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤"
)
# roughly how common: the first surnames are far more frequent than the last
_SURNAME_WEIGHTS = tuple(1.0 / (rank + 6) for rank in range(len(SURNAMES)))
GIVEN_NAMES = _words(
    "伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 涛 明 超 霞 平 刚 华 红 斌 辉 鹏 琳 婷 雪 倩 波 宁 "
    "建华 志强 海燕 晓东 丽娟 春梅 志明 建平 文军 晓峰 秀梅 丽华 振华 国强 红梅 海波 晓燕 俊杰 "
    "文静 雅琴 永刚 建军 美玲 丽萍 志华 宏伟 伟东 小红 金凤 德华 少华 晓敏 婉婷 思远 嘉怡 宇航 "
    "浩然 子轩 欣怡 梓涵 晓光 立新 雪梅 艺彬 清泉 福建 明辉 燕玲"
)
OLDER_GIVEN_NAMES = _words(  # heads of empty-nest and left-behind-children households: the elderly
    "秀英 桂英 秀兰 玉兰 桂兰 淑珍 凤英 建国 国庆 德明 福生 金花 玉梅 秀珍 桂芳 永福 水生 "
    "来福 荣华 美华 秀云 庆和 振国 长福 春兰 玉珍 根生 炳坤 阿妹 水仙"
)
SHOP_BRANDS = _words(
    "鑫达 顺发 华美 惠民 好运来 福缘 佳佳 益民 金源 兴隆 百家 万家福 鸿运 老街 阿香 闽南 杏林 "
    "天天 诚信 安心"
)
SHOP_KINDS = _words(
    "便利店 五金店 餐饮店 汽修店 大药房 理发店 超市 水果店 建材店 小吃店 茶叶店 干洗店 "
    "快递驿站 早餐店 粮油店"
)
# prefixes the numbering plan gives to mobile networks (移动, 联通, 电信)
MOBILE_PREFIXES = _words(
    "130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 "
    "166 176 177 178 180 181 182 183 184 185 186 187 188 189 191 198 199"
)

DEPARTMENTS = (  # 职能部门 (code, name, who answers), in the order of their people's telegram ids
    ("police", "杏林派出所", "值班民警 {name}"),
    ("urban_construction", "杏林街道城建办", "{name}"),
    ("property", "杏林物业服务有限公司", "客服 {name}"),
    ("fire", "杏林消防救援站", "值班员 {name}"),
    ("civil_affairs", "杏林街道民政所", "{name}"),
)

COMPLAINT_PROCESS = (
    "① 向网格员当面、电话或通过本机器人反映诉求；"
    "② 一般事项由网格员现场处理，需协调事项由社区分中心协调，"
    "重大、紧急事项立即上报街道综合调处中心；"
    "③ 限时办理，办结后回访，请您评价是否满意；"
    "④ 对办理结果不满意的，可拨打本牌投诉电话，或向街道纪工委反映。"
)
SERVICES_BY_TIER = (
    "综合调处：矛盾纠纷调解、信访接待、事件派遣与督办；民生服务：社保、医保、低保、残疾人证代办；"
    "平安建设：安全隐患与消防隐患排查、流动人口登记；政策咨询与法律援助。"
    "工作时间：周一至周五 8:30–12:00，14:30–17:30。",
    "社区分中心：受理居民诉求、调解矛盾纠纷；代办居住证、社保卡、老年优待证；"
    "困难群众帮扶、政策微宣讲；每周召开网格联席会议。",
    "网格长每季度召集三级网格员例会，协调解决三级网格上报的问题；解决不了的及时上报社区分中心。",
    "网格员每月联系每户至少一次，重点户每月上门走访；受理报事报修、矛盾纠纷、安全隐患、"
    "民生求助；代办各类便民事项；每季度开展政策微宣讲。",
)


class _Names:
    """Chinese personal names, distinct where asked."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._staff: set[str] = set()

    def any(self, *, older: bool = False) -> str:
        surname = self._rng.choices(SURNAMES, weights=_SURNAME_WEIGHTS)[0]
        return surname + self._rng.choice(OLDER_GIVEN_NAMES if older else GIVEN_NAMES)

    def distinct(self, taken: set[str], *, older: bool = False) -> str:
        while True:
            name = self.any(older=older)
            if name not in taken:
                taken.add(name)
                return name

    def staff(self) -> str:
        return self.distinct(self._staff)


class _Phones:
    """Unique mobile numbers (E.164, +86 1xx xxxx xxxx) and landlines of the area."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def mobile(self) -> str:
        while True:
            number = f"+86{self._rng.choice(MOBILE_PREFIXES)}{self._rng.randrange(10**8):08d}"
            if number not in self._used:
                self._used.add(number)
                return number

    def landline(self) -> str:
        while True:
            number = f"{AREA_PHONE}-6{self._rng.randrange(10**6):06d}"
            if number not in self._used:
                self._used.add(number)
                return number


@dataclass
class _Tier3:
    code: str
    name: str
    area: str  # the notice-board area, without the household count
    addresses: list[str]  # one per household, in household order


def build_demo_community(seed: int = 2026) -> DemoCommunity:
    """Describe the sample community. Pure: the same seed gives the same description."""
    rng = random.Random(seed)
    names = _Names(rng)
    phones = _Phones(rng)

    root_code = _root_code()
    tier1: list[tuple[str, str, list[str]]] = []  # code, name, tier-2 codes
    tier2: list[tuple[str, str, str, list[_Tier3]]] = []  # code, name, parent, tier-3s
    for c_index, (community, places) in enumerate(LAYOUT, start=1):
        c_code = child_code(root_code, 0, c_index)
        tier1.append((c_code, community, []))
        for p_index, (place, kind) in enumerate(places, start=1):
            p_code = child_code(c_code, 1, p_index)
            tier1[-1][2].append(p_code)
            name = f"{place}沿街片区" if kind == STREET else f"{place}片区"
            tier3 = [
                _make_tier3(rng, child_code(p_code, 2, k), community, place, kind, k)
                for k in range(1, TIER3_PER_TIER2 + 1)
            ]
            tier2.append((p_code, name, c_code, tier3))

    households = _make_households(rng, names, phones, tier2)
    count_in: dict[str, int] = {}
    for h in households:
        code: str | None = h.grid_code
        while code is not None:
            count_in[code] = count_in.get(code, 0) + 1
            code = parent_of(code)

    bounds = _map_bounds(tier1, tier2)
    street_phone = phones.landline()
    grids: list[DemoGrid] = [
        DemoGrid(
            code=root_code,
            name=f"{STREET_NAME}综合调处中心",
            tier=0,
            parent_code=None,
            area_desc=(
                f"{STREET_NAME}辖{'、'.join(c[1] for c in tier1)}{len(tier1)}个社区，"
                f"设{len(tier2)}个二级网格、{len(tier2) * TIER3_PER_TIER2}个三级网格，"
                f"登记{count_in[root_code]}户。"
            ),
            services=SERVICES_BY_TIER[0],
            complaint_process=COMPLAINT_PROCESS,
            complaint_phone=street_phone,
            bounds=bounds[root_code],
        )
    ]
    community_phone: dict[str, str] = {}
    for c_code, community, p_codes in tier1:
        community_phone[c_code] = phones.landline()
        areas = "、".join(t[1] for t in tier2 if t[0] in p_codes)
        grids.append(
            DemoGrid(
                code=c_code,
                name=community,
                tier=1,
                parent_code=root_code,
                area_desc=(
                    f"{community}辖{areas}，设{len(p_codes)}个二级网格、"
                    f"{len(p_codes) * TIER3_PER_TIER2}个三级网格，登记{count_in[c_code]}户。"
                ),
                services=SERVICES_BY_TIER[1],
                complaint_process=COMPLAINT_PROCESS,
                complaint_phone=community_phone[c_code],
                bounds=bounds[c_code],
            )
        )
    for p_code, name, c_code, tier3 in tier2:
        grids.append(
            DemoGrid(
                code=p_code,
                name=name,
                tier=2,
                parent_code=c_code,
                area_desc=(
                    f"{name}：{'、'.join(t.name for t in tier3)}，共{count_in[p_code]}户。"
                ),
                services=SERVICES_BY_TIER[2],
                complaint_process=COMPLAINT_PROCESS,
                complaint_phone=community_phone[c_code],
                bounds=bounds[p_code],
            )
        )
    for p_code, _name, c_code, tier3 in tier2:
        grids.extend(
            DemoGrid(
                code=t.code,
                name=t.name,
                tier=3,
                parent_code=p_code,
                area_desc=f"{t.area}，共{count_in[t.code]}户。",
                services=SERVICES_BY_TIER[3],
                complaint_process=COMPLAINT_PROCESS,
                complaint_phone=community_phone[c_code],
                bounds=bounds[t.code],
            )
            for t in tier3
        )

    departments = tuple(
        DemoDepartment(code=code, name=name, grid_code=root_code, phone=phones.landline())
        for code, name, _ in DEPARTMENTS
    )
    people = _make_people(rng, names, phones, root_code, tier1, tier2, households)
    return DemoCommunity(
        grids=tuple(grids),
        departments=departments,
        households=tuple(households),
        people=tuple(people),
        places=_make_places(names, phones, tier2[0][3][0]),
    )


# one place of every default place type (bot/services/place_policy.py), in the first tier-3
# grid, whose worker is the "worker" persona: /inspect and the push show them in the sandbox
DEMO_PLACES = (
    ("small_venue", "老街坊家常菜馆", "{area} 临街底商1号"),
    ("rental", "3单元502出租屋", "{area} 3单元502"),
    ("key_unit", "小太阳幼儿园", "{area} 南侧"),
    ("pharmacy", "仁心大药房", "{area} 临街底商2号"),
    ("enterprise", "鑫达印刷厂", "{area} 东侧厂房"),
    ("common_area", "{area}公共部位", "{area} 各楼道及消防通道"),
)


def _make_places(names: _Names, phones: _Phones, grid: _Tier3) -> tuple[DemoPlace, ...]:
    return tuple(
        DemoPlace(
            code=f"{grid.code}P{index:02d}",
            name=name.format(area=grid.name),
            type_key=type_key,
            grid_code=grid.code,
            address=address.format(area=grid.area),
            responsible_name=names.any(),
            responsible_phone=phones.mobile(),
        )
        for index, (type_key, name, address) in enumerate(DEMO_PLACES, start=1)
    )


def _map_bounds(
    tier1: Sequence[tuple[str, str, list[str]]],
    tier2: Sequence[tuple[str, str, str, list[_Tier3]]],
) -> dict[str, tuple[float, float, float, float]]:
    """Each grid's rectangle: communities from west to east, their tier-2 grids from north to
    south, each tier-2 grid's tier-3 grids from west to east; parents hold their children
    exactly and neighbours share edges, so nothing overlaps."""
    rows = max(len(p_codes) for _, _, p_codes in tier1)
    north = MAP_SOUTH + rows * TIER3_HEIGHT
    width = TIER3_PER_TIER2 * TIER3_WIDTH
    found: dict[str, tuple[float, float, float, float]] = {
        _root_code(): _bounds(MAP_WEST, MAP_SOUTH, MAP_WEST + len(tier1) * width, north)
    }
    tier3_of = {p_code: tier3 for p_code, _, _, tier3 in tier2}
    for c, (c_code, _, p_codes) in enumerate(tier1):
        west = MAP_WEST + c * width
        found[c_code] = _bounds(west, MAP_SOUTH, west + width, north)
        for p, p_code in enumerate(p_codes):
            top = north - p * TIER3_HEIGHT
            found[p_code] = _bounds(west, top - TIER3_HEIGHT, west + width, top)
            for k, tier3 in enumerate(tier3_of[p_code]):
                left = west + k * TIER3_WIDTH
                found[tier3.code] = _bounds(left, top - TIER3_HEIGHT, left + TIER3_WIDTH, top)
    return found


def _root_code() -> str:
    code = f"{DISTRICT_CODE}{STREET_INDEX:03d}"
    validate_code(code, 0)
    return code


def _make_tier3(
    rng: random.Random, code: str, community: str, place: str, kind: str, k: int
) -> _Tier3:
    """A tier-3 grid (三级网格) and the addresses of its households."""
    count = rng.randint(MIN_HOUSEHOLDS, MAX_HOUSEHOLDS)
    if kind == BUILDINGS:  # one residential building: 2 units, 8 floors, 2 flats a floor
        building = 3 * (k - 1) + rng.randint(1, 3)
        flats = [(u, f, r) for u in (1, 2) for f in range(1, 9) for r in (1, 2)]
        chosen = sorted(rng.sample(flats, count))
        return _Tier3(
            code=code,
            name=f"{place}{building}号楼",
            area=f"{place}{building}号楼1–2单元",
            addresses=[
                f"{community} {place} {building}号楼 {u}单元 {f}0{r}" for u, f, r in chosen
            ],
        )
    first, last = 60 * (k - 1) + 1, 60 * k
    numbers = sorted(rng.sample(range(first, last + 1), count))
    if kind == STREET:  # a stretch of an old street: houses and shop fronts
        return _Tier3(
            code=code,
            name=f"{place}{first}–{last}号",
            area=f"{place}{first}–{last}号沿街住户及商铺",
            addresses=[f"{community} {place} {n}号" for n in numbers],
        )
    return _Tier3(  # a villager group (村民小组) of a former village, house-numbered
        code=code,
        name=f"{place}第{k}村民小组",
        area=f"{place}第{k}村民小组（{first}–{last}号）",
        addresses=[f"{community} {place} 第{k}组 {n}号" for n in numbers],
    )


def _make_households(
    rng: random.Random,
    names: _Names,
    phones: _Phones,
    tier2: Sequence[tuple[str, str, str, list[_Tier3]]],
) -> list[DemoHousehold]:
    slots = [(t, n) for *_, tier3 in tier2 for t in tier3 for n in range(len(t.addresses))]
    total = len(slots)
    # businesses sit on the streets and in the villages, not in the residential buildings
    shop_slots = [i for i, (t, _) in enumerate(slots) if "号楼" not in t.name]
    business = set(rng.sample(shop_slots, round(BUSINESS_SHARE * total)))
    residential = [i for i in range(total) if i not in business]
    categories = _draw_categories(rng, residential)

    shops: set[str] = set()
    heads_in_grid: dict[str, set[str]] = {}
    households: list[DemoHousehold] = []
    for i, (tier3, n) in enumerate(slots):
        flags = categories.get(i, 0)
        taken = heads_in_grid.setdefault(tier3.code, set())
        elderly = bool(
            flags & (HouseholdCategory.EMPTY_NEST | HouseholdCategory.LEFT_BEHIND_CHILDREN)
        )
        person = names.distinct(taken, older=elderly)
        note = None
        if i in business:
            head = _shop_name(rng, shops)
            note = f"负责人：{person}"
            members = rng.randint(1, 6)
        else:
            head = person
            members = _members(rng, flags)
        households.append(
            DemoHousehold(
                code=f"{tier3.code}{n + 1:03d}",
                grid_code=tier3.code,
                address=tier3.addresses[n],
                head_name=head,
                phone=phones.mobile(),
                members=members,
                categories=flags,
                is_business=i in business,
                note=note,
            )
        )
    return households


def _draw_categories(rng: random.Random, residential: list[int]) -> dict[int, int]:
    """Exact shares of each category; illness drives poverty (因病致贫), as in life."""
    flags: dict[int, int] = {}

    def count(category: HouseholdCategory) -> int:
        return round(CATEGORY_SHARES[category] * len(residential))

    def mark(category: HouseholdCategory, among: list[int], wanted: int) -> None:
        for i in rng.sample(among, min(wanted, len(among))):
            flags[i] = flags.get(i, 0) | category

    def having(category: HouseholdCategory) -> list[int]:
        return [i for i in residential if flags.get(i, 0) & category]

    def lacking(*categories: HouseholdCategory) -> list[int]:
        return [i for i in residential if not any(flags.get(i, 0) & c for c in categories)]

    ill = HouseholdCategory.ILLNESS_DISABILITY
    mark(ill, residential, count(ill))
    for category, from_ill in (
        (HouseholdCategory.SUBSISTENCE, 3),  # a third of them also ill or disabled
        (HouseholdCategory.POVERTY_RISK, 2),  # half of them
    ):
        wanted = count(category)
        mark(category, having(ill), wanted // from_ill)
        mark(category, lacking(category), wanted - len(having(category)))
    empty_nest = HouseholdCategory.EMPTY_NEST
    children = HouseholdCategory.LEFT_BEHIND_CHILDREN
    mark(empty_nest, residential, count(empty_nest))
    mark(children, lacking(empty_nest), count(children))  # an empty nest has no children
    military = HouseholdCategory.MILITARY_MARTYR
    mark(military, residential, count(military))
    return flags


def _members(rng: random.Random, flags: int) -> int:
    if flags & HouseholdCategory.EMPTY_NEST:
        return rng.choice((1, 2, 2))
    if flags & HouseholdCategory.LEFT_BEHIND_CHILDREN:
        return rng.randint(2, 5)  # grandparents and the children
    return rng.choices((1, 2, 3, 4, 5, 6), weights=(8, 25, 30, 20, 12, 5))[0]


def _shop_name(rng: random.Random, taken: set[str]) -> str:
    while True:
        brand = rng.choice(SHOP_BRANDS)
        name = (
            f"厦门{brand}商贸有限公司"
            if rng.random() < 0.2
            else f"{brand}{rng.choice(SHOP_KINDS)}"
        )
        if name not in taken:
            taken.add(name)
            return name


def _make_people(
    rng: random.Random,
    names: _Names,
    phones: _Phones,
    root_code: str,
    tier1: Sequence[tuple[str, str, list[str]]],
    tier2: Sequence[tuple[str, str, str, list[_Tier3]]],
    households: Sequence[DemoHousehold],
) -> list[DemoPerson]:
    def staff(
        offset: int,
        role: Role,
        grid_code: str,
        label: str = "{name}",
        department: str | None = None,
    ) -> DemoPerson:
        return DemoPerson(
            telegram_id=TELEGRAM_ID_BASE + offset,
            name=label.format(name=names.staff()),
            phone=phones.mobile(),
            role=role,
            grid_code=grid_code,
            department_code=department,
        )

    people = [
        staff(_ADMIN, Role.ADMIN, root_code),
        staff(_CENTER, Role.CENTER, root_code),
        staff(_SUPERVISOR, Role.SUPERVISOR, root_code),
    ]
    people.extend(
        staff(_DEPARTMENTS + i, Role.DEPARTMENT, root_code, f"{name}（{duty}）", code)
        for i, (code, name, duty) in enumerate(DEPARTMENTS)
    )
    people.extend(
        staff(_COMMUNITY_HEADS + i, Role.HEAD, code) for i, (code, _, _) in enumerate(tier1)
    )
    people.extend(staff(_TIER2_HEADS + i, Role.HEAD, t[0]) for i, t in enumerate(tier2))
    tier3 = [t for *_, grids in tier2 for t in grids]
    people.extend(staff(_WORKERS + i, Role.WORKER, t.code) for i, t in enumerate(tier3))
    for i, t in enumerate(tier3):  # one resident per tier-3 grid, the head of a family
        home = rng.choice([h for h in households if h.grid_code == t.code and not h.is_business])
        people.append(
            DemoPerson(
                telegram_id=TELEGRAM_ID_BASE + _RESIDENTS + i,
                name=home.head_name,
                phone=home.phone,
                role=Role.RESIDENT,
                grid_code=t.code,
                household_code=home.code,
            )
        )
    return people
