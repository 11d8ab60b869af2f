"""Typed callback data: short prefixes, enum actions, integer ids, far below 64 bytes."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Self

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

from bot.routing.policy import MAX_TIER
from models import HandlingKind, Rating, Role, SpotCheckResult, TicketCategory, TicketSource

MAX_ROW_ID: Final = 2**31 - 1  # keys are INTEGER columns: a larger number is no row of ours
RowId = Annotated[int, Field(ge=0, le=MAX_ROW_ID)]  # out of range: the data does not parse
PageNo = Annotated[int, Field(ge=0, le=MAX_ROW_ID)]  # a page of a list (the list clamps it)
"""Every number in callback data is one of these (tests/test_callback_data.py holds every
class to it): data with a number the database cannot hold does not parse, and the press gets
the stale-button answer instead of reaching a query."""


class LanguageCode(StrEnum):
    ZH_HANS = "zh_Hans"
    ZH_HANT = "zh_Hant"
    EN = "en"


class LanguageCb(CallbackData, prefix="lg"):
    code: LanguageCode


class GridPageCb(CallbackData, prefix="gp"):
    """A page of the grid tree under ``root``."""

    root: RowId
    page: PageNo


class PeoplePageCb(CallbackData, prefix="pp"):
    page: PageNo


class HouseholdCb(CallbackData, prefix="hh"):
    """Open one household's card."""

    id: RowId


class HouseholdPageCb(CallbackData, prefix="hp"):
    page: PageNo


class InviteRevokeCb(CallbackData, prefix="ir"):
    """Withdraw one pending invitation (the service re-checks that the presser manages its
    grid)."""

    id: RowId


class StrictCallbackData(CallbackData, prefix="_"):
    """Callback data that parses only in the exact form :meth:`pack` writes (not ``+3``,
    `` 3``, ``03`` or ``3.0``)."""

    @classmethod
    def unpack(cls, value: str) -> Self:
        data = super().unpack(value)
        if data.pack() != value:
            raise ValueError("callback data not in its packed form")
        return data


class PickStep(StrEnum):
    OPEN = "o"  # show the grids directly below (grid 0: the top of one's own scope)
    CHOOSE = "c"  # this is the grid


class Ledger(StrEnum):
    HOUSEHOLDS = "h"  # 住户台账
    PEOPLE = "p"  # 人员台账
    MEMBERS = "m"  # 人口台账: the people of households
    TICKETS = "t"  # 工单台账, of a period
    VISITS = "v"  # 走访台账, of a period
    MEETINGS = "g"  # 例会台账, of a period


PERIOD_LEDGERS = frozenset({Ledger.TICKETS, Ledger.VISITS, Ledger.MEETINGS})


class SpanChoice(StrEnum):
    """The periods a ledger's buttons offer (anything else is typed: /export visits 2026-10)."""

    THIS_MONTH = "tm"
    LAST_MONTH = "lm"
    THIS_QUARTER = "tq"
    LAST_QUARTER = "lq"


class ExportCb(StrictCallbackData, prefix="ex"):
    """Export one ledger over the presser's whole scope, as ``/export <ledger>`` does (the
    service re-checks that the presser may export)."""

    ledger: Ledger


class ExportGridCb(StrictCallbackData, prefix="eg"):
    """Export one ledger of one grid: walk one's own grids, then choose one (the service
    refuses, and audits, a grid outside one's scope)."""

    ledger: Ledger
    grid: RowId
    page: PageNo
    step: PickStep


class ExportPeriodCb(StrictCallbackData, prefix="ep"):
    """Export a ledger of a period (tickets, visits, meetings) over one's scope (grid 0) or
    one grid (the service refuses, and audits, a grid outside one's scope)."""

    ledger: Ledger
    grid: RowId
    span: SpanChoice


class TemplateCb(StrictCallbackData, prefix="tm"):
    """The empty sheet of one ledger, as ``/template <ledger>``."""

    ledger: Ledger


class InviteRoleCb(StrictCallbackData, prefix="iv"):
    """/invite, step one: the role (refused unless the presser may invite to it)."""

    role: Role


class InviteGridCb(StrictCallbackData, prefix="ig"):
    """/invite, step two: walk the grid tree of one's own scope, then choose a grid (the
    service refuses a grid outside it, and audits the attempt)."""

    role: Role
    grid: RowId
    page: PageNo
    step: PickStep


class InviteDepartmentCb(StrictCallbackData, prefix="id"):
    """/invite of a department's staff, last step: the department (0: show a page of them)."""

    grid: RowId
    department: RowId
    page: PageNo


class GridOp(StrEnum):
    ADD = "a"  # /grid 新增: pick the parent, then type the name
    RENAME = "r"  # /grid 改名: pick the grid, then type the name
    MOVE = "m"  # /grid 移动: pick the grid, then its new parent
    NOTICE = "n"  # /grid 公示: pick the grid, then the field, then type the text


class GridEditCb(StrictCallbackData, prefix="ge"):
    """/grid's changes by buttons: walk one's own grids and choose one (the service refuses,
    and audits, a grid outside one's scope). ``subject`` is the grid being moved while its new
    parent is picked (0 otherwise)."""

    op: GridOp
    subject: RowId
    grid: RowId
    page: PageNo
    step: PickStep


class NoticeField(StrEnum):
    AREA = "area"
    SERVICES = "services"
    PROCESS = "process"
    PHONE = "phone"


class NoticeFieldCb(StrictCallbackData, prefix="gf"):
    """/grid 公示: which field of the grid's notice board to write."""

    grid: RowId
    field: NoticeField


class PersonAction(StrEnum):
    OPEN = "o"  # the person's card, with what one can do
    OFF = "x"  # deactivate: asks first
    OFF_YES = "y"
    MUTE = "m"  # stop them reporting: asks for how long, then why
    UNMUTE = "u"
    SET = "s"  # another role or grid: the role, then the grid


class PersonCb(StrictCallbackData, prefix="pe"):
    """/people by buttons: an action on one person (the service re-checks that the presser
    manages every grid the person holds a role in, and audits a refusal)."""

    action: PersonAction
    person: RowId


class MuteSpan(StrEnum):
    DAY = "24"
    THREE_DAYS = "72"
    WEEK = "168"


class PersonMuteCb(StrictCallbackData, prefix="pm"):
    person: RowId
    hours: MuteSpan


class PersonRoleCb(StrictCallbackData, prefix="pr"):
    person: RowId
    role: Role


class PersonGridCb(StrictCallbackData, prefix="pq"):
    """The grid of a person's new role: walk one's own grids, then choose one."""

    person: RowId
    role: Role
    grid: RowId
    page: PageNo
    step: PickStep


class PersonDepartmentCb(StrictCallbackData, prefix="pd"):
    """The department of a person's new department role (0: show a page of them)."""

    person: RowId
    grid: RowId
    department: RowId
    page: PageNo


class TicketAction(StrEnum):
    OPEN = "o"
    ACCEPT = "a"
    NOTE = "n"
    ASK = "q"
    RESOLVE = "r"
    ESCALATE = "e"
    TRANSFER = "t"
    DUPLICATE = "d"
    REJECT = "x"
    HISTORY = "h"
    ANSWER = "w"  # the reporter answers a question
    DISPATCH = "s"  # the centre sends it down (下派) or takes it up (上收): choose a tier
    CLASSIFY = "k"  # 定性: choose the ticket's handling kind
    RETURN = "b"  # 退单: the lead department gives it back, with a reason
    EXTEND = "y"  # 延期申请: the lead department asks for more time
    VERIFY = "v"  # 核查通过: confirm on site with a photo
    SEND_BACK = "z"  # 核查不通过: send it back to the handler with a reason
    URGE = "u"  # 催办, by a supervisor


class TicketCb(CallbackData, prefix="tk"):
    """An action on a ticket's card (the service re-checks who may do it)."""

    action: TicketAction
    id: RowId


class ListMenu(StrEnum):
    """What a /tickets button shows: the list, or the choices of one filter."""

    LIST = "l"
    STATE = "s"
    CATEGORY = "c"
    SOURCE = "o"
    GRID = "g"
    DEPARTMENT = "d"


class TicketListCb(StrictCallbackData, prefix="tl"):
    """A page of /tickets under its filters: a state, category and source as their place in
    the service's lists (0: any; a place past a list is refused as out of date), overdue
    (0/1), a grid and a department (0: any; the service re-checks the grid's scope)."""

    state: RowId
    overdue: RowId
    category: RowId
    source: RowId
    grid: RowId
    department: RowId
    page: PageNo
    menu: ListMenu


class TicketPhotosCb(CallbackData, prefix="tp"):
    """Send the photos filed with a ticket's report to the person pressing (the service
    re-checks that they may see the ticket)."""

    id: RowId

    @classmethod
    def unpack(cls, value: str) -> Self:
        """Strictly: only the exact text :meth:`pack` writes (not ``+3``, `` 3`` or ``3.0``)."""
        data = super().unpack(value)
        if data.pack() != value:
            raise ValueError("callback data not in its packed form")
        return data


class TransferCb(CallbackData, prefix="tt"):
    """Transfer a ticket to one department."""

    id: RowId
    department: RowId


class AssistAddCb(CallbackData, prefix="aa"):
    """The centre adds an assisting department (协办) by hand (0: show the departments)."""

    id: RowId
    department: RowId = 0


class DispatchStep(StrEnum):
    ASK = "a"  # a tier was chosen: ask for a short reason
    GO = "g"  # send it now, without a reason


class DispatchCb(CallbackData, prefix="dp"):
    """Send a ticket to one link of its chain (下派 / 上收): ``tier`` and ``role`` name the
    link; the service refuses anything that is not a link of this ticket's chain."""

    id: RowId
    tier: Annotated[int, Field(ge=0, le=MAX_TIER)]
    role: Role
    step: DispatchStep

    @classmethod
    def unpack(cls, value: str) -> Self:
        """Strictly: only the exact text :meth:`pack` writes (not ``+3``, `` 3`` or ``3.0``)."""
        data = super().unpack(value)
        if data.pack() != value:
            raise ValueError("callback data not in its packed form")
        return data


class ClassifyStep(StrEnum):
    ASK = "a"  # a kind was chosen: ask for a short reason
    GO = "g"  # classify it now, without a reason


class ClassifyCb(CallbackData, prefix="cl"):
    """Classify a ticket (定性) as ``kind``; the service re-checks who may and routes it."""

    id: RowId
    kind: HandlingKind
    step: ClassifyStep

    @classmethod
    def unpack(cls, value: str) -> Self:
        """Strictly: only the exact text :meth:`pack` writes."""
        data = super().unpack(value)
        if data.pack() != value:
            raise ValueError("callback data not in its packed form")
        return data


class RateCb(CallbackData, prefix="rt"):
    """The reporter's rating of a resolved ticket."""

    id: RowId
    rating: Rating


class QuotaRuleAction(StrEnum):
    ADD = "a"  # yes, add the rule typed with /quota_rules add (kept in the conversation)
    RETIRE = "r"  # yes, retire rule ``rule``


class QuotaRuleCb(StrictCallbackData, prefix="qr"):
    """The "yes" of /quota_rules add and retire (the service re-checks that the presser
    administers the whole area, and audits a refusal)."""

    action: QuotaRuleAction
    rule: RowId = 0


class DutyAction(StrEnum):
    SWAP = "s"  # hand this shift to a colleague: choose whom
    ASK = "a"  # ask ``person`` to take ``shift``


class DutyCb(StrictCallbackData, prefix="du"):
    """/duty's buttons on one's own shift (the service re-checks that the shift is the
    presser's and the person a colleague at the same centre, and audits a refusal)."""

    action: DutyAction
    shift: RowId
    person: RowId = 0


class DutyAnswer(StrEnum):
    AGREE = "y"
    DECLINE = "n"


class DutySwapCb(StrictCallbackData, prefix="dw"):
    """The colleague's answer to a swap (only the person asked may answer; audited)."""

    swap: RowId
    answer: DutyAnswer


class CancelCb(CallbackData, prefix="cx"):
    """Leave whatever the bot is waiting for."""


class CancelStepCb(CallbackData, prefix="cs"):
    """Leave the step the bot waits at — only while it still waits there, for the same ticket:
    pressed later (the text was sent, the step ran out, another conversation began, the same
    step was opened for another ticket since) it cancels nothing."""

    step: str  # the FSM state of the step, ``:`` written ``.`` (see :func:`step_tag`)
    ticket: RowId = 0  # the ticket the step is about (0: none)


def step_tag(state: str | None) -> str:
    """``state`` as :class:`CancelStepCb` carries it (callback data fields hold no ``:``)."""
    return (state or "").replace(":", ".")


class ReturnVisitOutcome(StrEnum):
    SATISFIED = "s"
    BASICALLY = "b"
    UNSATISFIED = "u"
    UNREACHABLE = "x"


class ReturnVisitCb(CallbackData, prefix="rv"):
    """What the reporter said when the worker called back (回访)."""

    id: RowId
    outcome: ReturnVisitOutcome


class BroadcastStep(StrEnum):
    EMERGENCY = "e"  # mark it an emergency (应急), or not
    PREVIEW = "p"  # show it as its recipients will see it
    SEND = "s"  # confirm: it goes out
    CANCEL = "x"  # drop the draft


class BroadcastCb(StrictCallbackData, prefix="bc"):
    """A button on one's broadcast draft (the service refuses, and audits, a press on a
    broadcast that is not the presser's or lies outside their scope)."""

    id: RowId
    step: BroadcastStep


AudienceKey = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,28}$")]  # AUDIENCES, tag_<key>


class BroadcastAudienceCb(StrictCallbackData, prefix="ba"):
    """Who a broadcast draft goes to (a key of the audience list; an unknown one is refused)."""

    id: RowId
    audience: AudienceKey


class ReceiptCb(StrictCallbackData, prefix="rc"):
    """A recipient's "收到" under an emergency broadcast."""

    id: RowId


class MemberAction(StrEnum):
    OPEN = "o"  # the member's card
    FORGET = "f"  # erase their personal data: asks first
    FORGET_YES = "y"  # erase it: confirmed


class MemberCb(StrictCallbackData, prefix="hm"):
    """One household member (the service re-checks what the presser may see or do, and
    audits a refusal)."""

    action: MemberAction
    member: RowId


class RevealField(StrEnum):
    ID_NUMBER = "i"
    PHONE = "p"
    BIRTH_DATE = "b"
    NAME = "n"
    TAGS = "g"  # person tags (bot/services/tags.py)


class RevealPurpose(StrEnum):
    ASK = "-"  # not chosen yet: ask why
    VISIT = "v"  # 入户走访核实
    CASE = "c"  # 办理诉求
    REGISTER = "r"  # 登记核对


class MemberRevealCb(StrictCallbackData, prefix="hv"):
    """Show one masked field of a member in full, for a purpose (audited)."""

    member: RowId
    field: RevealField
    purpose: RevealPurpose


class ExtensionDecision(StrEnum):
    APPROVE = "a"
    REFUSE = "r"


class ExtensionCb(StrictCallbackData, prefix="xd"):
    """The centre's decision on one request for more time (延期申请); the service re-checks
    that the presser is the centre over the ticket, and audits a refusal."""

    id: RowId
    decision: ExtensionDecision


class AssistCb(StrictCallbackData, prefix="as"):
    """An assisting department (协办) answers: ``id`` is its ask; the service re-checks that
    the presser is on that department's staff, and audits a refusal."""

    id: RowId


class DepartmentAction(StrEnum):
    LIST = "l"  # the list of departments (page)
    OPEN = "o"  # one department's card
    NEW = "n"  # type the new department's name
    RENAME = "r"  # type its new name
    RETIRE = "x"  # asks first
    RETIRE_YES = "y"
    CATEGORIES = "c"  # the category buttons
    ROUTE_ON = "1"  # send its categories straight to it (a policy rule)
    ROUTE_OFF = "0"
    INVITE = "i"  # an invite link for its staff


class DepartmentCb(StrictCallbackData, prefix="dm"):
    """/departments by buttons (the service re-checks that the presser is an admin of the
    street centre, and audits a refusal). ``id`` 0: none (the list, a new one)."""

    action: DepartmentAction
    id: RowId
    page: PageNo = 0


class DepartmentCategoryCb(StrictCallbackData, prefix="dc"):
    """Add a category to what a department handles, or take it away."""

    id: RowId
    category: TicketCategory


class IntakeSourceCb(StrictCallbackData, prefix="is"):
    """Staff intake, step one: where the report came from (巡查, 来电, 来访, 12345, 交办)."""

    source: TicketSource


class IntakeGridCb(StrictCallbackData, prefix="ik"):
    """Staff intake, the grid: walk one's own grids, then choose one (the service refuses, and
    audits, a grid outside one's scope)."""

    grid: RowId
    page: PageNo
    step: PickStep


class IntakeCategoryCb(StrictCallbackData, prefix="ic"):
    """Staff intake, the category of the problem."""

    category: TicketCategory


class SpotCheckCb(StrictCallbackData, prefix="sc"):
    """A supervisor's call back found a spot-checked item true or false (the service
    re-checks that the presser oversees its grid)."""

    id: RowId
    result: SpotCheckResult


class PartyPickCb(StrictCallbackData, prefix="ya"):
    """The contact-household picker (党员联系户): ``household`` 0 turns to ``page``; another
    toggles that household for the party member ``member`` (the register row). The service
    re-checks that the presser may assign in the member's grid."""

    member: RowId
    household: RowId
    page: PageNo


class PartyContactKind(StrEnum):
    ASK = "a"  # which way? (the buttons below)
    PHONE = "p"
    IN_PERSON = "i"
    LECTURE = "l"  # 微宣讲
    OTHER = "o"


class PartyContactCb(StrictCallbackData, prefix="yc"):
    """A party member records a contact with one of her contact households (the service
    re-checks that she is its party contact)."""

    household: RowId
    kind: PartyContactKind


class RentalAction(StrEnum):
    ADD = "a"  # register a tenant (the landlord)
    LINK = "l"  # a link for tenants to register themselves (the landlord)


class RentalCb(StrictCallbackData, prefix="rn"):
    """A landlord's rental house (出租房屋); the service re-checks the presser is its landlord."""

    action: RentalAction
    rental: RowId


class TenancyAction(StrEnum):
    CONFIRM = "c"  # the worker confirms the residence registration (居住登记)
    MOVED_OUT = "o"  # the tenant moved out (landlord or worker)


class TenancyCb(StrictCallbackData, prefix="rx"):
    """One tenant's stay; the service re-checks who may confirm or record the move-out."""

    action: TenancyAction
    tenancy: RowId
