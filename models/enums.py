"""The domain's closed vocabularies, stored as short strings."""

from __future__ import annotations

from enum import IntEnum, IntFlag, StrEnum


class Role(StrEnum):
    RESIDENT = "resident"  # 居民
    WORKER = "worker"  # 网格员
    HEAD = "head"  # 网格长
    CENTER = "center"  # 综合调处中心
    DEPARTMENT = "department"  # 职能部门
    SUPERVISOR = "supervisor"  # 纪委 / 督查组
    ADMIN = "admin"  # 系统管理员


class HouseholdCategory(IntFlag):
    """The six special categories (六类户); a household may be in several."""

    SUBSISTENCE = 1  # 低保五保户
    ILLNESS_DISABILITY = 2  # 重病重残户
    POVERTY_RISK = 4  # 易返贫致贫户
    EMPTY_NEST = 8  # 空巢老人户
    LEFT_BEHIND_CHILDREN = 16  # 留守儿童户
    MILITARY_MARTYR = 32  # 烈属军属户


class VisitKind(StrEnum):
    PHONE = "phone"  # 电话联系
    IN_PERSON = "in_person"  # 入户走访
    LECTURE = "lecture"  # 政策微宣讲
    OTHER = "other"  # 其他方式 (微信等)


class TicketCategory(StrEnum):
    DISPUTE = "dispute"  # 矛盾纠纷
    SAFETY = "safety"  # 安全隐患
    FIRE = "fire"  # 消防隐患
    FACILITY = "facility"  # 公共设施损坏
    ILLEGAL_BUILDING = "illegal_building"  # 违章搭建
    OUTSIDERS = "outsiders"  # 外来人员
    SANITATION = "sanitation"  # 环境卫生 / 市容环境
    PROPERTY = "property"  # 物业服务
    WAGES = "wages"  # 拖欠工资
    AGRICULTURE = "agriculture"  # 三农
    LIVELIHOOD = "livelihood"  # 民生求助
    POLICY = "policy"  # 政策咨询
    OTHER = "other"  # 其他


class TicketSource(StrEnum):
    """Where a ticket came in: the bot (a resident, a worker's push, a meeting) or Open311."""

    TELEGRAM = "telegram"  # a resident reporting through the bot
    OPEN311 = "open311"  # a partner app, through GeoReport v2
    PATROL = "patrol"  # 巡查发现: staff found it on their rounds
    PHONE = "phone"  # 来电: a caller, filed by staff
    DESK = "desk"  # 来访: someone at the desk, filed by staff
    HOTLINE = "hotline"  # 12345 热线: a hotline order, with its order number
    HANDED_DOWN = "handed_down"  # 上级交办: handed down from above


# the sources staff file by hand (staff intake), in the order the buttons show them
STAFF_SOURCES: tuple[TicketSource, ...] = (
    TicketSource.PATROL,
    TicketSource.PHONE,
    TicketSource.DESK,
    TicketSource.HOTLINE,
    TicketSource.HANDED_DOWN,
)


class HandlingKind(StrEnum):
    GENERAL = "general"  # 一般性
    COORDINATION = "coordination"  # 需协调
    URGENT = "urgent"  # 突发 / 紧急
    APPROVAL = "approval"  # 需审批
    MAJOR = "major"  # 重大


class TicketState(StrEnum):
    SUBMITTED = "submitted"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    WAITING_REPORTER = "waiting_reporter"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    TRANSFERRED = "transferred"
    REOPENED = "reopened"
    VERIFYING = "verifying"  # 待核查: handled, waiting for the on-site check before it closes


class TicketEventKind(StrEnum):
    """What a ticket event (``TicketEvent.action``) records: every kind the services write."""

    SUBMITTED = "submitted"
    DISPATCHED = "dispatched"  # by the routing rules, or by the centre (下派 / 上收)
    ACCEPTED = "accepted"
    NOTE = "note"  # progress
    ASKED = "asked"  # the reporter is asked a question
    ANSWERED = "answered"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"  # 重办
    ESCALATED = "escalated"  # 上报
    TRANSFERRED = "transferred"  # 转办, to a department
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    JOINED = "joined"  # another resident reported the same
    WARNED = "warned"  # a deadline is near
    OVERDUE = "overdue"  # past the deadline at the top of the chain
    RECLASSIFIED = "reclassified"  # 定性
    PUBLIC_NOTICE = "public_notice"  # 公示
    RATING_COMMENT = "rating_comment"  # the reporter's words with the rating
    RETURN_VISIT_DUE = "return_visit_due"  # 回访
    RETURNED = "returned"  # 退单: a department gives back a ticket that is not theirs
    EXTENSION_ASKED = "extension_asked"  # 延期申请
    EXTENSION_APPROVED = "extension_approved"  # 延期 approved: the deadline moves
    EXTENSION_REFUSED = "extension_refused"  # 延期 refused: the deadline stays
    ASSIST_ASKED = "assist_asked"  # 协办: a department is asked to assist
    ASSIST_ANSWERED = "assist_answered"  # the assisting department's answer
    VERIFIED = "verified"  # 核查通过: confirmed on site (with a photo)
    SENT_BACK = "sent_back"  # 核查不通过: sent back to the handler with a reason
    URGED = "urged"  # 催办: a supervisor pinged the owners
    REMINDED = "reminded"  # a 协办 ask or a 待核查 ticket nobody acted on, asked again


OPEN_TICKET_STATES: frozenset[TicketState] = frozenset(
    {
        TicketState.SUBMITTED,
        TicketState.DISPATCHED,
        TicketState.ACCEPTED,
        TicketState.IN_PROGRESS,
        TicketState.WAITING_REPORTER,
        TicketState.TRANSFERRED,
        TicketState.REOPENED,
        TicketState.VERIFYING,
    }
)


class Rating(StrEnum):
    SATISFIED = "satisfied"  # 满意
    BASICALLY_SATISFIED = "basically_satisfied"  # 基本满意
    UNSATISFIED = "unsatisfied"  # 不满意


class Rsvp(StrEnum):
    PENDING = "pending"
    ATTENDING = "attending"
    DECLINED = "declined"


class OutboxLane(IntEnum):
    """Which outbox rows go first when the sender must choose (lower first)."""

    REPLY = 0  # an answer to what a person just did: they are watching the chat
    NOTICE = 1  # one message to one person about something that just happened
    BULK = 2  # pushes, digests, broadcasts: thousands at a time, minutes are fine
    CONTROL = 3  # not a message (menus, pins): never in a chat's message order


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after retries or a permanent error
    DROPPED = "dropped"  # no longer useful (e.g. a reminder for a meeting that is over)


class Relation(StrEnum):
    """A household member's relation to the head of household (与户主关系)."""

    HEAD = "head"  # 户主 / 本人
    SPOUSE = "spouse"  # 配偶
    CHILD = "child"  # 子女
    PARENT = "parent"  # 父母
    GRANDCHILD = "grandchild"  # 孙子女
    GRANDPARENT = "grandparent"  # 祖父母
    SIBLING = "sibling"  # 兄弟姐妹
    IN_LAW = "in_law"  # 儿媳 / 女婿
    TENANT = "tenant"  # 租户
    OTHER = "other"  # 其他


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"


class ResidenceStatus(StrEnum):
    """How a person lives in the community (人口类别)."""

    REGISTERED = "registered"  # 户籍人口: household registration (户口) here
    RESIDENT = "resident"  # 常住人口: lives here, registered elsewhere
    FLOATING = "floating"  # 流动人口: here for a while


class PartyKind(StrEnum):
    """A party member's standing (党员类别): full, probationary, or away from home."""

    FULL = "full"  # 正式党员
    PROBATIONARY = "probationary"  # 预备党员
    FLOATING = "floating"  # 流动党员: lives here, membership kept elsewhere (or away)


class SpotCheckKind(StrEnum):
    """What a supervisor's spot check (抽查) calls back about."""

    VISIT = "visit"  # a logged household visit (走访)
    TICKET = "ticket"  # a closed ticket


class SpotCheckResult(StrEnum):
    CONFIRMED = "confirmed"  # 属实
    FALSE = "false"  # 不属实
