"""SQLModel tables and their Create/Read shapes. No behaviour lives here."""

from sqlmodel import SQLModel

from models.assessment import AssessmentPolicyVersion
from models.broadcast import Broadcast, BroadcastReach, BroadcastRecipient
from models.duty import DutyGapWarning, DutyPage, DutyShift, DutySwap
from models.enums import (
    OPEN_TICKET_STATES,
    STAFF_SOURCES,
    Gender,
    HandlingKind,
    HouseholdCategory,
    OutboxLane,
    OutboxStatus,
    PartyKind,
    Rating,
    Relation,
    ResidenceStatus,
    Role,
    Rsvp,
    SpotCheckKind,
    SpotCheckResult,
    TicketCategory,
    TicketEventKind,
    TicketSource,
    TicketState,
    VisitKind,
)
from models.grid import Grid, GridBoundary, GridCreate, GridRead
from models.household import Household, HouseholdCreate, HouseholdRead, Visit
from models.meeting import Meeting, MeetingInvite
from models.member import HouseholdMember
from models.open311 import ApiKey, Open311Request
from models.party import PartyBranch, PartyContact, PartyContactLog
from models.people import Person, PersonCreate, PersonRead, RoleAssignment
from models.place import Hazard, Inspection, Place, PlacePolicyVersion
from models.quota import DailyPush, QuotaRule, VisitTally
from models.registry import Department, ExtensionRequest, Invite, TicketAssist
from models.rental import Rental, Tenancy
from models.routing import CalendarDay, PolicyVersion
from models.system import (
    AuditLog,
    Counter,
    FsmRecord,
    JobRun,
    OutboxMessage,
    ProcessedUpdate,
    SchedulerLease,
)
from models.tag import FollowUp, PersonTag, TagPolicyVersion
from models.ticket import (
    ReturnVisit,
    SpotCheck,
    Ticket,
    TicketCreate,
    TicketEvent,
    TicketPhoto,
    TicketRead,
)

metadata = SQLModel.metadata

__all__ = [
    "FollowUp",
    "PersonTag",
    "TagPolicyVersion",
    "Broadcast",
    "BroadcastReach",
    "BroadcastRecipient",
    "AssessmentPolicyVersion",
    "OPEN_TICKET_STATES",
    "ApiKey",
    "AuditLog",
    "CalendarDay",
    "Counter",
    "DailyPush",
    "Department",
    "DutyGapWarning",
    "DutyPage",
    "DutyShift",
    "DutySwap",
    "ExtensionRequest",
    "Invite",
    "STAFF_SOURCES",
    "TicketAssist",
    "PolicyVersion",
    "Open311Request",
    "SpotCheck",
    "SpotCheckKind",
    "SpotCheckResult",
    "QuotaRule",
    "ReturnVisit",
    "SchedulerLease",
    "VisitTally",
    "FsmRecord",
    "Grid",
    "GridBoundary",
    "GridCreate",
    "GridRead",
    "HandlingKind",
    "Hazard",
    "Inspection",
    "Place",
    "PlacePolicyVersion",
    "Household",
    "HouseholdCategory",
    "HouseholdCreate",
    "HouseholdMember",
    "Rental",
    "Tenancy",
    "Gender",
    "Relation",
    "ResidenceStatus",
    "HouseholdRead",
    "JobRun",
    "Meeting",
    "MeetingInvite",
    "OutboxMessage",
    "OutboxLane",
    "OutboxStatus",
    "PartyBranch",
    "PartyContact",
    "PartyContactLog",
    "PartyKind",
    "Person",
    "PersonCreate",
    "PersonRead",
    "ProcessedUpdate",
    "Rating",
    "Role",
    "Rsvp",
    "RoleAssignment",
    "Ticket",
    "TicketCategory",
    "TicketEventKind",
    "TicketCreate",
    "TicketEvent",
    "TicketPhoto",
    "TicketRead",
    "TicketSource",
    "TicketState",
    "Visit",
    "VisitKind",
    "metadata",
]
